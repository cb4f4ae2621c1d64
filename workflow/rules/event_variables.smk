# Branch `event_variables` (`snakemake --cores all event_variables`): deep-learned event variables (arXiv:2105.10126) that maximise the mutual information with unknown masses, against m_bc, m_T and M_T2.
# Generates its own toy, trains, and writes metrics.json plus figures; needs nothing of the search.


rule event_variables:
    output:
        metrics=f"{RUN}/event_variables/metrics.json",
        plot=report(
            f"{RUN}/event_variables/event_variables.png",
            caption="../report/event_variables.rst",
            category="8. Adversarial games and learned observables",
        ),
    params:
        config=CONFIG,
        block=config["event_variables"],  # the config it reads: a changed value reruns it
        seed=config["seed"],
        device=config["device"],
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/event_variables.log",
    conda:
        "../../envs/ml.yaml"
    threads: config["threads"]
    resources:
        gpu=gpu_slots(config["device"]),
    shell:
        "python -m anomalyhunt.event_variables --config {params.config:q} --out-dir {params.out_dir:q}"
        " > {log:q} 2>&1"
