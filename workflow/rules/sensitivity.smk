# The sensitivity curve (`snakemake --cores all sensitivity`): the package reruns this workflow once
# per injected count and seed (results/<run>-sens-s<seed>-i<n>/, each reused when finished) and
# plots the medians. The scan runs on the submitting host; sensitivity.snakemake_args (e.g.
# "--profile profiles/slurm") sends the points' own jobs to a cluster.

localrules:
    sensitivity,


rule sensitivity:
    output:
        json=f"{RUN}/sensitivity/sensitivity.json",
        md=f"{RUN}/sensitivity/sensitivity.md",
        csv=f"{RUN}/sensitivity/points.csv",
        plot=report(
            f"{RUN}/sensitivity/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="5. Sensitivity",
        ),
    params:
        config=CONFIG,
        # every part of the search: a change reruns the scan, which reuses unchanged points
        search={k: v for k, v in config.items() if k != "run"},
        snakefile=workflow.main_snakefile,
        args=config["sensitivity"]["snakemake_args"],
        out_dir=lambda wc, output: os.path.dirname(output.json),
    log:
        f"{LOGS}/sensitivity.log",
    conda:
        "../../envs/stats.yaml"
    # every core the scan is given (Snakemake scales this down to --cores, or --local-cores under a
    # cluster executor, where the rule runs on the submitting host): each point's own Snakemake
    # schedules its jobs on them
    threads: 1024
    shell:
        "python -m anomalyhunt.sensitivity --config {params.config:q} --out-dir {params.out_dir:q}"
        " --snakefile {params.snakefile:q} --cores {threads} --snakemake-args={params.args:q}"
        " > {log:q} 2>&1"
