# Branch `avo` (`snakemake --cores all avo`): adversarial variational optimization (arXiv:1707.07113) of a black-box e+e- -> mu+ mu- simulator's parameters.
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule avo:
    output:
        metrics=f"{RUN}/avo/metrics.json",
        plot=report(
            f"{RUN}/avo/avo_path.png",
            caption="../report/avo.rst",
            category="8. Adversarial games and learned observables",
        ),
        fit=report(
            f"{RUN}/avo/avo_fit.png",
            caption="../report/avo.rst",
            category="8. Adversarial games and learned observables",
        ),
    params:
        config=CONFIG,
        block=config["avo"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/avo.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.avo --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
