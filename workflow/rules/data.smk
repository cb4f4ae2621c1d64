rule toy_events:
    output:
        f"{RUN}/data/toy_events.h5",
    params:
        config=CONFIG,
        toy=config["data"]["toy"],
        seed=config["seed"],
    log:
        f"{LOGS}/toy_events.log",
    benchmark:
        f"{BENCH}/toy_events.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.data events --config {params.config:q} --out {output:q} > {log:q} 2>&1"


rule download_lhco:
    output:
        config["data"]["lhco"]["path"],
    params:
        url=config["data"]["lhco"]["url"],
        md5=config["data"]["lhco"]["md5"],
    log:
        f"{LOGS}/download_lhco.log",
    benchmark:
        f"{BENCH}/download_lhco.tsv"
    conda:
        "../../envs/data.yaml"
    retries: 2
    shell:
        "python -m anomalyhunt.data events --config {params.config:q} --out {output:q} > {log:q} 2>&1"


rule features:
    input:
        events_file(),
    output:
        f"{RUN}/data/features.parquet",
    params:
        tree=["--tree", config["data"]["file"]["tree"]] if config["data"]["file"]["tree"] else [],
    log:
        f"{LOGS}/features.log",
    benchmark:
        f"{BENCH}/features.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.data features --input {input:q} {params.tree:q} --out {output:q} > {log:q} 2>&1"
