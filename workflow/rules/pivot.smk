# Branch `pivot` (`snakemake --cores all pivot`): learning to pivot with an adversary (arXiv:1611.01046): a classifier made independent of a nuisance parameter.
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule pivot:
    output:
        metrics=f"{RUN}/pivot/metrics.json",
        plot=report(
            f"{RUN}/pivot/pivot.png",
            caption="../report/pivot.rst",
            category="8. Adversarial games and learned observables",
        ),
        tradeoff=report(
            f"{RUN}/pivot/tradeoff.png",
            caption="../report/pivot.rst",
            category="8. Adversarial games and learned observables",
        ),
    params:
        config=CONFIG,
        block=config["pivot"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/pivot.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.pivot --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
