rule summary:
    input:
        windows=rules.regions.output.windows,
        fits=expand(rules.bumphunt.output.fit, window=WINDOWS, method=METHODS),
    output:
        json=f"{RUN}/summary.json",
        md=f"{RUN}/summary.md",
        front=f"{RUN}/report.rst",
        csv=report(
            f"{RUN}/local_z.csv",
            caption="../report/local_z_table.rst",
            category="1. Summary",
        ),
        scan=report(
            f"{RUN}/plots/local_z.png",
            caption="../report/local_z.rst",
            category="1. Summary",
        ),
        p0=report(
            f"{RUN}/plots/local_p0.png",
            caption="../report/local_p0.rst",
            category="1. Summary",
        ),
        limits=report(
            f"{RUN}/plots/limits.png",
            caption="../report/limits.rst",
            category="1. Summary",
        ),
    params:
        config=CONFIG,
        summary=config["summary"],
        seed=config["seed"],
        out_dir=lambda wc, output: os.path.dirname(output.json),
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    conda:
        "../../envs/stats.yaml"
    threads: config["threads"]
    shell:
        "python -m anomalyhunt.summary --config {params.config:q} --windows {input.windows:q}"
        " --fits {input.fits:q} --out-dir {params.out_dir:q} --jobs {threads} > {log:q} 2>&1"
