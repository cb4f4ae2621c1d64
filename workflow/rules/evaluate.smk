rule evaluate:
    input:
        expand(rules.scores.output[0], method=METHODS, allow_missing=True),
    output:
        metrics=f"{RUN}/windows/{{window}}/evaluation/metrics.json",
        curves=report(
            f"{RUN}/windows/{{window}}/evaluation/roc_sic.png",
            caption="../report/evaluation.rst",
            category="4. Evaluation against truth",
            labels=window_labels("SIC and rejection"),
        ),
        sculpting=report(
            f"{RUN}/windows/{{window}}/evaluation/sculpting.png",
            caption="../report/sculpting.rst",
            category="4. Evaluation against truth",
            labels=window_labels("mjj sculpting"),
        ),
    params:
        named=lambda wc, input: [f"{m}={path}" for m, path in zip(METHODS, input)],
    log:
        f"{LOGS}/evaluate/{{window}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{window}}.tsv"
    conda:
        "../../envs/stats.yaml"
    group:
        "bumphunt"
    shell:
        "python -m anomalyhunt.evaluate --scores {params.named:q}"
        " --out {output.metrics:q} --plot {output.curves:q} --sculpt-plot {output.sculpting:q}"
        " > {log:q} 2>&1"
