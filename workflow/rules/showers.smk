# Branch `showers` (`snakemake --cores all showers`): BIB-AE photon showers in a sampling calorimeter with its post-processor (arXiv:2005.05334).
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule showers:
    output:
        metrics=f"{RUN}/showers/metrics.json",
        plot=report(
            f"{RUN}/showers/cell_energy.png",
            caption="../report/showers.rst",
            category="6. Generative",
        ),
        profiles=report(
            f"{RUN}/showers/profiles.png",
            caption="../report/showers.rst",
            category="6. Generative",
        ),
    params:
        config=CONFIG,
        block=config["showers"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/showers.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.showers --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
