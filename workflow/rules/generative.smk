# `snakemake --cores all generative`: the four generative branches (stage 6, issue 15).

localrules:
    generative,


rule generative:
    input:
        rules.gan_events.output,
        rules.ganplify.output,
        rules.weighted_gan.output,
        rules.showers.output,
