# The paper's Table 1 (aggregated constrained EM and judge score per model) with significance
# markers, the significance table, per-dataset tables and plots; `snakemake --report` collects
# them with their captions.


include: "helpers/report.smk"


rule significance:
    input:
        item_scores=expand("<results>/scores/{model}.items.parquet", model=MODELS),
        manifests=expand("<results>/scores/{model}.manifest.json", model=MODELS),
    output:
        csv=report(
            "<results>/tables/significance.csv",
            caption="../report/significance.rst",
            category="Results",
        ),
    log:
        "<logs>/significance/significance.log",
    benchmark:
        "<benchmarks>/significance/significance.tsv"
    conda:
        "../../envs/workflow.yaml"
    threads: 1
    params:
        model_order=["base", *MIXTURES],
        significance=STUDY.evaluation.significance.to_dict(),
        bootstrap=STUDY.evaluation.bootstrap.to_dict(),
        code=script_code("significance.py"),
    script:
        "../scripts/significance.py"


rule table1:
    input:
        scores=expand("<results>/scores/{model}.json", model=MODELS),
        significance="<results>/tables/significance.csv",
        manifests=expand("<results>/scores/{model}.manifest.json", model=MODELS),
    output:
        csv=report(
            "<results>/tables/table1.csv",
            caption="../report/table1.rst",
            category="Results",
        ),
        md="<results>/tables/table1.md",
        tex=report(
            "<results>/tables/table1.tex",
            caption="../report/table1_tex.rst",
            category="Results",
        ),
        per_dataset=report(
            "<results>/tables/per_dataset.csv",
            caption="../report/per_dataset.rst",
            category="Results",
        ),
        per_dataset_md=report(
            "<results>/tables/per_dataset.md",
            caption="../report/per_dataset_md.rst",
            category="Results",
        ),
    log:
        "<logs>/table1/table1.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        model_order=["base", *MIXTURES],
        alpha=STUDY.evaluation.significance.alpha,
        code=script_code("table1.py"),
    script:
        "../scripts/table1.py"


rule plot_table1:
    input:
        csv="<results>/tables/table1.csv",
    output:
        png=report(
            "<results>/plots/table1.png",
            caption="../report/table1_plot.rst",
            category="Results",
        ),
    log:
        "<logs>/plot_table1/plot_table1.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        code=script_code("plot_table1.py"),
    script:
        "../scripts/plot_table1.py"


rule plot_per_dataset:
    input:
        csv="<results>/tables/per_dataset.csv",
    output:
        png=report(
            "<results>/plots/per_dataset_heatmap.png",
            caption="../report/per_dataset_heatmap.rst",
            category="Results",
        ),
    log:
        "<logs>/plot_per_dataset/plot_per_dataset.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        model_order=["base", *MIXTURES],
        code=script_code("plot_per_dataset.py"),
    script:
        "../scripts/plot_per_dataset.py"


rule plot_judge_length:
    input:
        scores="<results>/metaeval/item_scores.csv",
        selection="<results>/metaeval/judge_selection.json",
        model_scores=expand("<results>/scores/{model}.items.parquet", model=MODELS),
        manifests=expand("<results>/scores/{model}.manifest.json", model=MODELS),
    output:
        png=report(
            "<results>/plots/judge_vs_length.png",
            caption="../report/judge_vs_length.rst",
            category="Meta-evaluation",
        ),
    log:
        "<logs>/plot_judge_length/plot_judge_length.log",
    localrule: True
    conda:
        "../../envs/workflow.yaml"
    params:
        model_order=["base", *MIXTURES],
        code=script_code("plot_judge_length.py"),
    script:
        "../scripts/plot_judge_length.py"


rule mixture:
    input:
        get_mixture_targets,
    output:
        touch("<results>/targets/mixture_{mixture}.done"),
    log:
        "<logs>/mixture/{mixture}.log",
    localrule: True
