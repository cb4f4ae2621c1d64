# Branch `fastsim` (`snakemake --cores all fastsim`): fast simulation of a Z -> mu mu detector by adversarial conditional density estimation and WGAN-GP, against a conditional flow and a mixture density network.
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule fastsim:
    output:
        metrics=f"{RUN}/fastsim/metrics.json",
        plot=report(
            f"{RUN}/fastsim/marginals.png",
            caption="../report/fastsim.rst",
            category="7. Unfolding and fast simulation",
        ),
        resolution=report(
            f"{RUN}/fastsim/resolution.png",
            caption="../report/fastsim.rst",
            category="7. Unfolding and fast simulation",
        ),
        distances=report(
            f"{RUN}/fastsim/distances.png",
            caption="../report/fastsim.rst",
            category="7. Unfolding and fast simulation",
        ),
    params:
        config=CONFIG,
        block=config["fastsim"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/fastsim.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.fastsim --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
