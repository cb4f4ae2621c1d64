# Branch `weighted_gan` (`snakemake --cores all weighted_gan`): a GAN trained on weighted events against hit-or-miss unweighting (arXiv:2012.07873).
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule weighted_gan:
    output:
        metrics=f"{RUN}/weighted_gan/metrics.json",
        plot=report(
            f"{RUN}/weighted_gan/distributions.png",
            caption="../report/weighted_gan.rst",
            category="6. Generative",
        ),
        weights=report(
            f"{RUN}/weighted_gan/weights.png",
            caption="../report/weighted_gan.rst",
            category="6. Generative",
        ),
    params:
        config=CONFIG,
        block=config["weighted_gan"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/weighted_gan.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.weighted_gan --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
