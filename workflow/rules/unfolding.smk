# Branch `unfolding` (`snakemake --cores all unfolding`): unfolding of a parton-level Z W -> l l j j toy from its detector events: fully conditional GAN (arXiv:1912.00477), conditional INN (arXiv:2006.06685) and the OmniFold cross-check (arXiv:1911.09107).
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule unfolding:
    output:
        metrics=f"{RUN}/unfolding/metrics.json",
        plot=report(
            f"{RUN}/unfolding/ratios.png",
            caption="../report/unfolding.rst",
            category="7. Unfolding and fast simulation",
        ),
        sliced=report(
            f"{RUN}/unfolding/slice.png",
            caption="../report/unfolding.rst",
            category="7. Unfolding and fast simulation",
        ),
        calibration=report(
            f"{RUN}/unfolding/calibration.png",
            caption="../report/unfolding.rst",
            category="7. Unfolding and fast simulation",
        ),
        posterior=report(
            f"{RUN}/unfolding/posterior.png",
            caption="../report/unfolding.rst",
            category="7. Unfolding and fast simulation",
        ),
        ranking=report(
            f"{RUN}/unfolding/ranking.png",
            caption="../report/unfolding.rst",
            category="7. Unfolding and fast simulation",
        ),
        omnifold_gauss=report(
            f"{RUN}/unfolding/omnifold_gauss.png",
            caption="../report/unfolding.rst",
            category="7. Unfolding and fast simulation",
        ),
    params:
        config=CONFIG,
        block=config["unfolding"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/unfolding.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.unfolding --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
