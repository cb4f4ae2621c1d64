# Branch `ganplify` (`snakemake --cores all ganplify`): GANplifying (arXiv:2008.06545): how many true events a GAN trained on N is worth, on the camel, ring and shell toys.
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule ganplify:
    output:
        metrics=f"{RUN}/ganplify/metrics.json",
        plot=report(
            f"{RUN}/ganplify/amplification.png",
            caption="../report/ganplify.rst",
            category="6. Generative",
        ),
        mse=report(
            f"{RUN}/ganplify/quantile_mse.png",
            caption="../report/ganplify.rst",
            category="6. Generative",
        ),
        densities=report(
            f"{RUN}/ganplify/densities.png",
            caption="../report/ganplify.rst",
            category="6. Generative",
        ),
    params:
        config=CONFIG,
        block=config["ganplify"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/ganplify.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.ganplify --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
