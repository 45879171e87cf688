import math
from pathlib import Path

import pytest
import torch
from metrics_fixtures import cycling, mnist_halves
from torchvision.transforms.functional import gaussian_blur

from gansweep.errors import ConfigError, DivergedError
from gansweep.metrics.evaluate import EvalSettings, Evaluator, RealData
from gansweep.metrics.features import load_digit_net

CPU = torch.device("cpu")
N = 2000  # samples scored per case: enough for stable numbers, small enough to be quick
STACKED_FID = 7.930  # measured; seeded like the rest
STACKED_ONE_FID = 558.17
RING8 = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)])
GRID25 = torch.cartesian_prod(torch.arange(-4.0, 5.0, 2.0), torch.arange(-4.0, 5.0, 2.0))


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    """Half of mnist5k as real data, scored against four fake generators."""
    (real, real_labels), (other, labels) = mnist_halves()
    settings = EvalSettings(n_samples=N, cache_dir=tmp_path_factory.mktemp("cache"))
    evaluator = Evaluator(RealData("image", real, "mnist5k-half-a", labels=real_labels), settings, CPU)
    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return {
        "real": evaluator(cycling(other)),
        "one_digit": evaluator(cycling(other[labels == 3])),
        "three_digits": evaluator(cycling(other[(labels == 1) | (labels == 4) | (labels == 7)])),
        "noise": evaluator(cycling(noise)),
        "blurry": evaluator(cycling(gaussian_blur(other, kernel_size=9, sigma=1.0))),
    }


# The values each case measured (README's sanity table quotes them). Data, subsets and
# noise are seeded, so they are the same on every machine; rel=1e-3 covers float
# summation order, far below the gaps between cases.
MEASURED = {
    "real": {"fid": 0.4204, "inception_score": 8.3196, "precision": 0.856, "recall": 0.8545, "coverage": 0.971, "modes_covered": 10, "mode_kl": 0.000805},
    "one_digit": {"fid": 213.08, "inception_score": 1.0132, "precision": 0.832, "recall": 0.0, "coverage": 0.096, "modes_covered": 1, "mode_kl": 2.3279},
    "three_digits": {"fid": 107.30, "inception_score": 2.8268, "precision": 0.8825, "recall": 0.2, "coverage": 0.295, "modes_covered": 3, "mode_kl": 1.1969},
    "noise": {"fid": 2156.83, "inception_score": 1.0, "precision": 0.0, "recall": 0.0, "coverage": 0.0, "modes_covered": 1, "mode_kl": 2.3279},
    "blurry": {"fid": 30.94, "inception_score": 4.7669, "precision": 0.4805, "recall": 0.0045, "coverage": 0.1105, "modes_covered": 10},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MEASURED))
def test_each_generator_scores_its_measured_values(scores, case):
    got = {k: scores[case][k] for k in MEASURED[case]}
    assert got == pytest.approx(MEASURED[case], rel=1e-3, abs=1e-5)


SANITY_ROWS = ["real", "one_digit", "three_digits", "noise", "blurry"]  # the tables' row order


@pytest.mark.parametrize("doc", ["README.md", "docs/metrics.md"])
def test_the_docs_sanity_tables_quote_the_measured_values(doc: str) -> None:
    """Every cell of the sanity table agrees with MEASURED to the digits it shows."""
    lines = (Path(__file__).parent.parent / doc).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| generator | fid |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[start + 2:start + 2 + len(SANITY_ROWS)]]
    checked = 0
    for case, row in zip(SANITY_ROWS, rows):
        for column, cell in zip(header, row):
            key = {"modes": "modes_covered"}.get(column, column)
            if key not in MEASURED[case] or cell in ("–", "-"):
                continue
            shown = cell.split("/")[0]
            decimals = len(shown.split(".")[1]) if "." in shown else 0
            assert abs(float(shown) - MEASURED[case][key]) <= 0.5 * 10 ** -decimals + 1e-9, (doc, case, column, cell)
            checked += 1
    assert checked >= 30


def test_fid_ranks_a_blurry_ten_digit_generator_above_collapse_and_noise(scores):
    """The image default objective: spread (blur) and collapse never win against real
    data, and ten blurry digits beat one sharp digit."""
    ranked = sorted(scores, key=lambda case: scores[case]["fid"])
    assert ranked == ["real", "blurry", "three_digits", "one_digit", "noise"]


def test_real_vs_real_records_its_provenance(scores):
    real = scores["real"]
    assert real["modes_total"] == 10
    assert (real["n_fake"], real["n_real"], real["feature_net"], real["feature_domain"]) == (N, N, "digit_cnn", "digits")
    assert len(real["feature_net_sha256"]) == 64


def test_collapsed_generator_covers_one_mode(scores):
    collapsed = scores["one_digit"]
    assert collapsed["modes_covered"] == 1
    # -log(share of 3s among the real subset), which is close to 1/10.
    assert collapsed["mode_kl"] == pytest.approx(math.log(10), abs=0.05)


def test_three_digit_generator_covers_three_modes(scores):
    assert scores["three_digits"]["modes_covered"] == 3


def test_noise_has_the_worst_fid(scores):
    assert scores["noise"]["fid"] == max(s["fid"] for s in scores.values())


def test_real_statistics_are_cached_and_reused(tmp_path):
    (real, labels), (other, _) = mnist_halves()
    settings = EvalSettings(n_samples=300, cache_dir=tmp_path)
    first = Evaluator(RealData("image", real, "mnist5k-half-a", labels=labels), settings, CPU)(cycling(other))
    assert len(list(tmp_path.glob("real-*.pt"))) == 1
    # Same key, garbage samples: identical scores prove the cached statistics were used.
    blank = RealData("image", torch.zeros_like(real), "mnist5k-half-a", labels=labels)
    assert Evaluator(blank, settings, CPU)(cycling(other)) == first
    assert len(list(tmp_path.glob("*"))) == 1  # no stray temporary file


def test_scores_leave_the_global_rng_alone(tmp_path):
    (real, _), (other, _) = mnist_halves()
    evaluator = Evaluator(RealData("image", real, "mnist5k-half-a"), EvalSettings(n_samples=300, cache_dir=tmp_path), CPU)
    state = torch.get_rng_state()
    first = evaluator(cycling(other))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)
    assert evaluator(cycling(other)) == first


# Stacked MNIST ------------------------------------------------------------------------


def stack(images: torch.Tensor, labels: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(len(codes), 3, 28, 28): channel c of sample i shows a random image of codes[i]'s c-th digit."""
    digits = torch.stack([codes // 100, codes // 10 % 10, codes % 10], dim=1)
    order = torch.argsort(labels, stable=True)
    first = torch.searchsorted(labels[order], torch.arange(10))  # where each digit's run starts
    count = torch.bincount(labels, minlength=10)
    g = torch.Generator().manual_seed(0)
    pick = first[digits] + (torch.rand(digits.shape, generator=g) * count[digits]).long()
    return images[order[pick]].squeeze(2)  # (n, 3, 1, 28, 28) -> (n, 3, 28, 28)


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    (real, real_labels), (other, labels) = mnist_halves()
    real_codes = torch.randint(1000, (N // 2,), generator=torch.Generator().manual_seed(1))
    data = RealData("stacked", stack(real, real_labels, real_codes), "stacked-test")
    settings = EvalSettings(n_samples=N, cache_dir=tmp_path_factory.mktemp("cache"))
    return Evaluator(data, settings, CPU), other, labels


def test_stacked_samples_of_every_combination_cover_about_1000(stacked):
    evaluator, other, labels = stacked
    result = evaluator(cycling(stack(other, labels, torch.arange(1000).repeat(2))))
    assert result["modes_covered"] >= 995
    assert result["modes_total"] == 1000
    assert result["mode_kl"] < 0.1
    assert result["fid"] == pytest.approx(STACKED_FID, rel=1e-3)  # finite-sample bias of 1,000 real x 384 dims
    assert result["n_real"] == N // 2


def test_stacked_samples_of_one_combination_cover_one(stacked):
    evaluator, other, labels = stacked
    # Only digits the classifier reads correctly, so the answer is exactly one mode.
    wanted = (labels >= 1) & (labels <= 3)
    images, digits = other[wanted], labels[wanted]
    readable = load_digit_net(CPU).probs(images).argmax(dim=1) == digits
    result = evaluator(cycling(stack(images[readable], digits[readable], torch.full((N,), 123))))
    assert result["modes_covered"] == 1
    assert result["mode_kl"] == pytest.approx(math.log(1000))
    assert result["fid"] == pytest.approx(STACKED_ONE_FID, rel=1e-3)


# 2-D mixtures -------------------------------------------------------------------------


@pytest.mark.parametrize(("centers", "std"), [(RING8, 0.01), (GRID25, 0.05)])
def test_mixture_samples_cover_every_mode(centers, std, tmp_path):
    g = torch.Generator().manual_seed(0)

    def generate(n: int) -> torch.Tensor:
        return centers[torch.randint(len(centers), (n,), generator=g)] + std * torch.randn(n, 2, generator=g)

    real = RealData("mixture", generate(100), "mixture-test", centers=centers, std=std)
    result = Evaluator(real, EvalSettings(n_samples=2500, cache_dir=tmp_path), CPU)(generate)
    assert result["modes_covered"] == result["modes_covered_min"] == result["modes_total"] == len(centers)
    assert result["hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert (result["n_fake"], result["feature_net"]) == (2500, "none")
    assert list(tmp_path.iterdir()) == []  # nothing to cache for mixtures


# Errors ---------------------------------------------------------------------------------


def test_unknown_feature_net_is_a_config_error():
    with pytest.raises(ConfigError, match="data.feature_net=vgg: choose one of digit_cnn, inception, none"):
        EvalSettings(feature_net="vgg")


def test_digit_net_refuses_colour_images(tmp_path):
    real = RealData("image", torch.zeros(10, 3, 32, 32), "rgb")
    with pytest.raises(ConfigError, match="digit_cnn scores 1-channel digits; rgb has 3 channels"):
        Evaluator(real, EvalSettings(n_samples=10, cache_dir=tmp_path), CPU)


def test_mixture_needs_centers():
    with pytest.raises(ConfigError, match="a mixture needs centers and std"):
        RealData("mixture", torch.zeros(10, 2), "ring8")


def test_generator_output_is_checked(tmp_path):
    real = RealData("mixture", torch.zeros(10, 2), "ring8", centers=RING8, std=0.01)
    evaluator = Evaluator(real, EvalSettings(n_samples=10, cache_dir=tmp_path), CPU)
    with pytest.raises(ConfigError, match=r"generator returned shape \(10, 3\) for n=10; the data needs \(10, 2\)"):
        evaluator(lambda n: torch.zeros(n, 3))
    with pytest.raises(DivergedError, match="non-finite samples"):
        evaluator(lambda n: torch.full((n, 2), float("nan")))
