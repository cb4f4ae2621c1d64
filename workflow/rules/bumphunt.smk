rule bumphunt:
    input:
        scores=rules.scores.output,
        windows=rules.regions.output.windows,
    output:
        fit=f"{RUN}/windows/{{window}}/{{method}}/fit.json",
        # the figures are for people; the sensitivity scan's points (output.window_plots: false)
        # read only fit.json and skip them
        **(
            dict(
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
            )
            if config["output"]["window_plots"]
            else {}
        ),
    params:
        config=CONFIG,
        bumphunt=config["bumphunt"],
        plots=lambda wc, output: (
            ["--plot", output.plot, "--plot-scores", output.scores_plot]
            if config["output"]["window_plots"]
            else []
        ),
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
        " --out {output.fit:q} {params.plots:q}"
        " > {log:q} 2>&1"
