# Input functions and params helpers of the rules in workflow/rules/report.smk (only there).


def get_mixture_targets(wildcards):
    """Everything one mixture produces, for `snakemake mixture_NAT`-style partial runs."""
    mixture = wildcards.mixture
    biased = [f"{mixture}/seed{seed}" for seed in SEEDS] if position_bias_test_sets() else []
    return [
        f"<results>/mixtures/{mixture}/manifest.json",
        f"<results>/train/{mixture}/token_lengths.json",
        *(f"<results>/train/{mixture}/seed{seed}/adapter" for seed in SEEDS),
        *(f"<results>/scores/{mixture}/seed{seed}.json" for seed in SEEDS),
        *(f"<results>/scores/position_bias/{run}.json" for run in biased),
    ]
