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


PYTHIA = config["data"]["pythia"]


# Every chunk the configured counts need, QCD first: ceil(n / chunk_size) per process.
PYTHIA_CHUNKS = [
    f"{RUN}/data/pythia/{process}_{chunk}.h5"
    for process in ("qcd", "signal")
    for chunk in range(ah_pythia.n_chunks(PYTHIA, process))
]


# One job per chunk, so generation (about 40 QCD events/s per core) spreads over all cores or
# cluster nodes; each chunk's seed comes from the master seed, the process and the chunk index.
rule pythia_chunk:
    output:
        f"{RUN}/data/pythia/{{process}}_{{chunk}}.h5",
    wildcard_constraints:
        process="qcd|signal",
        chunk=r"\d+",
    params:
        config=CONFIG,
        pythia=PYTHIA,
        seed=config["seed"],
    log:
        f"{LOGS}/pythia_chunk/{{process}}_{{chunk}}.log",
    benchmark:
        f"{BENCH}/pythia_chunk/{{process}}_{{chunk}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        # a chunk's memory is flat in its size (batches of 100 events); doubled on each retry
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        # minutes: three times the expected 40 events/s, doubled on each retry
        runtime=lambda wildcards, attempt: attempt * (10 + -(-PYTHIA["chunk_size"] // 800)),
    shell:
        "python -m anomalyhunt.data pythia-chunk --config {params.config:q} "
        "--process {wildcards.process} --chunk {wildcards.chunk} --out {output:q} > {log:q} 2>&1"


rule pythia_merge:
    input:
        PYTHIA_CHUNKS,
    output:
        f"{RUN}/data/pythia_events.h5",
    log:
        f"{LOGS}/pythia_merge.log",
    benchmark:
        f"{BENCH}/pythia_merge.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.data merge --inputs {input:q} --out {output:q} > {log:q} 2>&1"


rule download_lhco:
    output:
        config["data"]["lhco"]["path"],
    params:
        config=CONFIG,
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


from anomalyhunt.data import lhco_raw as ah_lhco_raw  # noqa: E402

LHCO_RAW = ah_lhco_raw.resolve(config["data"]["lhco_raw"])
LHCO_RAW_CHUNKS = [
    f"{RUN}/data/lhco_raw/chunk_{chunk}.h5"
    for chunk in range(ah_lhco_raw.n_chunks(config["data"]["lhco_raw"]))
]


rule download_lhco_raw:
    output:
        LHCO_RAW["path"],
    params:
        config=CONFIG,
        url=LHCO_RAW["url"],
        md5=LHCO_RAW["md5"],
    log:
        f"{LOGS}/download_lhco_raw.log",
    benchmark:
        f"{BENCH}/download_lhco_raw.tsv"
    conda:
        "../../envs/data.yaml"
    retries: 2
    shell:
        "python -m anomalyhunt.data download --config {params.config:q} --out {output:q} > {log:q} 2>&1"


# One job per chunk of rows of the particle-level file (clustering runs ~120 events/s per core);
# each reads its rows in batches, so memory stays small whatever the chunk size.
rule lhco_raw_chunk:
    input:
        LHCO_RAW["path"],
    output:
        f"{RUN}/data/lhco_raw/chunk_{{chunk}}.h5",
    wildcard_constraints:
        chunk=r"\d+",
    params:
        config=CONFIG,
        raw=config["data"]["lhco_raw"],
    log:
        f"{LOGS}/lhco_raw_chunk/{{chunk}}.log",
    benchmark:
        f"{BENCH}/lhco_raw_chunk/{{chunk}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: attempt * (1000 + config["data"]["lhco_raw"]["batch_size"] // 20),
        # minutes: three times the expected 120 events/s, doubled on each retry
        runtime=lambda wildcards, attempt: attempt * (10 + -(-config["data"]["lhco_raw"]["chunk_size"] // 2400)),
    shell:
        "python -m anomalyhunt.data raw-chunk --config {params.config:q} --input {input:q} "
        "--chunk {wildcards.chunk} --out {output:q} > {log:q} 2>&1"


rule lhco_raw_merge:
    input:
        LHCO_RAW_CHUNKS,
    output:
        f"{RUN}/data/lhco_raw_events.h5",
    log:
        f"{LOGS}/lhco_raw_merge.log",
    benchmark:
        f"{BENCH}/lhco_raw_merge.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.data merge --keep-order --inputs {input:q} --out {output:q} > {log:q} 2>&1"


rule features:
    input:
        events_file(),
    output:
        f"{RUN}/data/features.parquet",
    params:
        config=CONFIG,
        tree=["--tree", config["data"]["file"]["tree"]] if config["data"]["file"]["tree"] else [],
        # how a user's file is read (branch names, jet branches) decides the features
        file=config["data"]["file"] if config["data"]["source"] == "file" else None,
    log:
        f"{LOGS}/features.log",
    benchmark:
        f"{BENCH}/features.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.data features --config {params.config:q} --input {input:q} {params.tree:q} "
        "--out {output:q} > {log:q} 2>&1"
