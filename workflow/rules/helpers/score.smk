# Input functions and params helpers of the rules in workflow/rules/score.smk (only there).


def get_score_manifests(wildcards):
    # predict's manifest, and judge's when there are open questions to judge
    judged = [f"<results>/judge/{wildcards.model}/manifest.json"] if open_test_sets() else []
    return [f"<results>/predict/{wildcards.model}/manifest.json", *judged]
