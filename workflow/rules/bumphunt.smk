rule bumphunt:
    input:
        scores=rules.scores.output,
        windows=rules.regions.output.windows,
    output:
        fit=f"{RUN}/windows/{{window}}/{{method}}/fit.json",
        plot=report(
            f"{RUN}/windows/{{window}}/{{method}}/fits.png",
            caption="../report/fits.rst",
            category="2. Bump hunt per window",
            subcategory="{method}",
            labels=window_labels("sideband fits at every cut"),
        ),
        scores_plot=report(
            f"{RUN}/windows/{{window}}/{{method}}/scores.png",
            caption="../report/scores.rst",
            category="3. Anomaly scores",
            subcategory="{method}",
            labels=window_labels("score distributions and cuts"),
        ),
    params:
        config=CONFIG,
        bumphunt=config["bumphunt"],
    log:
        f"{LOGS}/bumphunt/{{window}}_{{method}}.log",
    benchmark:
        f"{BENCH}/bumphunt/{{window}}_{{method}}.tsv"
    conda:
        "../../envs/stats.yaml"
    group:
        "bumphunt"
    shell:
        "python -m anomalyhunt.bumphunt --config {params.config:q} --windows {input.windows:q}"
        " --window {wildcards.window} --method {wildcards.method} --scores {input.scores:q}"
        " --out {output.fit:q} --plot {output.plot:q} --plot-scores {output.scores_plot:q}"
        " > {log:q} 2>&1"
