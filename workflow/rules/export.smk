# Optional ROOT copies of the per-window results (output.root: true), for ROOT-based tools.
ROOT_EXPORTS = (
    expand(f"{RUN}/windows/{{window}}/{{method}}/scores.root", window=WINDOWS, method=METHODS)
    if config["output"]["root"]
    else []
)


rule export_root:
    input:
        scores=rules.scores.output[0],
        events=rules.regions.output.events,
    output:
        scores=f"{RUN}/windows/{{window}}/{{method}}/scores.root",
        selected=f"{RUN}/windows/{{window}}/{{method}}/selected.root",
    params:
        keep_fraction=config["output"]["root_keep_fraction"],
    log:
        f"{LOGS}/export_root/{{window}}_{{method}}.log",
    conda:
        "../../envs/stats.yaml"
    resources:
        mem_mb=2000,
    shell:
        "python -m anomalyhunt.export --input {input.scores:q} --events {input.events:q} "
        "--out {output.scores:q} --selected-out {output.selected:q} "
        "--keep-fraction {params.keep_fraction} > {log:q} 2>&1"
