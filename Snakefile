# MedInjection-FR study as one dependency graph. Table of contents only: the rules live in
# workflow/rules/, the logic in the `medinjection` package (src/medinjection/).
from snakemake.utils import min_version

min_version("9.27")


# The study config unless the user gives their own (`--configfile config/demo.yaml`): Snakemake
# would otherwise deep-merge the two and mix the demo's sources with the study's.
if not config:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/sources.smk"
include: "workflow/rules/translate.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/translation_quality.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/mixtures.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/position_bias.smk"
include: "workflow/rules/report.smk"


onstart:
    check_before_run(config, os.environ)


rule all:
    default_target: True
    input:
        final_targets(),
