rule scores:
    input:
        events=rules.regions.output.events,
        windows=rules.regions.output.windows,
    output:
        f"{RUN}/windows/{{window}}/{{method}}/scores.parquet",
    params:
        config=CONFIG,
        method=lambda wc: config["scores"].get(wc.method, {}),
        seed=config["seed"],
        device=config["device"],
        model_dir=lambda wc: f"{RUN}/windows/{wc.window}/{wc.method}/models",
    log:
        f"{LOGS}/scores/{{window}}_{{method}}.log",
    benchmark:
        f"{BENCH}/scores/{{window}}_{{method}}.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.scores --config {params.config:q} --events {input.events:q}"
        " --windows {input.windows:q} --window {wildcards.window} --method {wildcards.method}"
        " --threads {threads} --model-dir {params.model_dir:q} --out {output:q} > {log:q} 2>&1"
