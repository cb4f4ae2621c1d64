# Branch `gan_events` (`snakemake --cores all gan_events`): event GAN with an MMD term on the W and
# top masses (arXiv:1907.03764) on a parton-level t tbar -> 6 quarks toy. Generates its own toy,
# trains the GAN with and without the MMD, and writes metrics.json plus the top mass peak and the
# kinematics with GAN/truth ratios; needs nothing of the search.


rule gan_events:
    output:
        metrics=f"{RUN}/gan_events/metrics.json",
        plot=report(
            f"{RUN}/gan_events/top_mass.png",
            caption="../report/gan_events.rst",
            category="6. Generative",
        ),
        ratios=report(
            f"{RUN}/gan_events/ratios.png",
            caption="../report/gan_events.rst",
            category="6. Generative",
        ),
    params:
        config=CONFIG,
        block=config["gan_events"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/gan_events.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.gan_events --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
