# The paper's Table 1 (aggregated constrained EM and judge score per model), per-dataset tables
# and plots; `snakemake --report` collects them with their captions.


rule table1:
    input:
        scores=expand("results/scores/{model}.json", model=MODELS),
    output:
        csv=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Results",
        ),
        md="results/tables/table1.md",
        per_dataset=report(
            "results/tables/per_dataset.csv",
            caption="../report/per_dataset.rst",
            category="Results",
        ),
    log:
        "logs/table1/table1.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        model_order=["base", *MIXTURES],
        code=CODE_VERSION,
    script:
        "../scripts/table1.py"


rule plot_table1:
    input:
        csv="results/tables/table1.csv",
    output:
        png=report(
            "results/plots/table1.png",
            caption="../report/table1_plot.rst",
            category="Results",
        ),
    log:
        "logs/plot_table1/plot_table1.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        code=CODE_VERSION,
    script:
        "../scripts/plot_table1.py"


rule mixture:
    input:
        get_mixture_targets,
    output:
        touch("results/targets/mixture_{mixture}.done"),
    log:
        "logs/mixture/{mixture}.log",
    localrule: True
