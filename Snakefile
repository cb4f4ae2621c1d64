# anomalyhunt: a model-agnostic dijet resonance search with machine-learned anomaly scores.
#   snakemake --cores all                       the default search (config/config.yaml)
#   snakemake --cores all --configfile my.yaml  another search; outputs under results/<run>/
# Each rule is a thin call of a package command (python -m anomalyhunt.<stage>); see README.md.

from snakemake.utils import min_version

min_version("9.27")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/scores.smk"
include: "workflow/rules/bumphunt.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/gan_events.smk"
include: "workflow/rules/ganplify.smk"
include: "workflow/rules/weighted_gan.smk"
include: "workflow/rules/showers.smk"
include: "workflow/rules/generative.smk"
include: "workflow/rules/unfolding.smk"
include: "workflow/rules/fastsim.smk"
include: "workflow/rules/pivot.smk"
include: "workflow/rules/avo.smk"
include: "workflow/rules/event_variables.smk"


report: report_front_page()


rule all:
    default_target: True
    input:
        rules.summary.output,
        expand(rules.evaluate.output.metrics, window=WINDOWS),
        ROOT_EXPORTS,
