rule regions:
    input:
        rules.features.output[0],
    output:
        events=f"{RUN}/regions/events.parquet",
        windows=f"{RUN}/regions/windows.json",
    params:
        config=CONFIG,
        regions=config["regions"],
        seed=config["seed"],
    log:
        f"{LOGS}/regions.log",
    benchmark:
        f"{BENCH}/regions.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=4000,
    shell:
        "python -m anomalyhunt.regions --config {params.config:q} --features {input:q}"
        " --out-events {output.events:q} --out-windows {output.windows:q} > {log:q} 2>&1"
