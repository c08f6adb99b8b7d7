"""Text corpora of the language model: vocabulary and encoding, windows, splits, preparation, checksums."""
import hashlib

import pytest
import torch

from analysis.networks import text
from analysis.networks.data import DataUnavailable


@pytest.fixture
def fake_debian(tmp_path, monkeypatch):
    """A Debian fortunes folder of small files (one without a final separator), plus the noise to skip."""
    debian = tmp_path / "debian"
    (debian / "off").mkdir(parents=True)
    for i, name in enumerate(text.FORTUNE_FILES):
        body = "".join(f"Fortune {i}.{j}: a bird in the hand, café {name}.\n%\n" for j in range(5))
        (debian / name).write_text(body if i else body[:-3], encoding="utf-8")
        (debian / f"{name}.dat").write_bytes(bytes(range(256)))
        (debian / f"{name}.u8").symlink_to(name)
    (debian / "off" / "rude").write_text("never included\n%\n")
    (debian / "bofh-excuses").write_text("another package's file, never included\n%\n")
    monkeypatch.setattr(text, "DEBIAN_FORTUNES", debian)
    return debian


def test_vocabulary_orders_by_frequency_then_code_point_and_reserves_unknown():
    assert text.vocabulary("abbccc d") == ("<unk>", "c", "b", " ", "a", "d")
    assert text.vocabulary("abbccc d", size=3) == ("<unk>", "c", "b")
    with pytest.raises(ValueError, match="size"):
        text.vocabulary("abc", size=0)


def test_encode_round_trips_and_maps_unknown_characters_to_zero():
    sample = "The quick brown fox, é and ∑.\n"
    vocab = text.vocabulary(sample)
    codes = text.encode(sample, vocab)
    assert codes.dtype == torch.long and codes.shape == (len(sample),)
    assert "".join(vocab[i] for i in codes.tolist()) == sample
    assert 0 not in codes.tolist()
    assert text.encode("Tz∑!", vocab).tolist() == [vocab.index("T"), 0, vocab.index("∑"), 0]
    assert text.encode("abc", ("<unk>",)).tolist() == [0, 0, 0]


def test_sequences_are_non_overlapping_windows_shifted_by_one():
    tokens = torch.arange(23)
    inputs, targets = text.sequences(tokens, 4)
    assert inputs.shape == targets.shape == (4, 4)  # 23 // 5 windows; the last 3 tokens are dropped
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    assert torch.equal(targets - inputs, torch.ones(4, 4, dtype=torch.long))
    assert inputs[:, 0].tolist() == [0, 5, 10, 15]
    assert text.sequences(torch.arange(5), 4)[0].shape == (1, 4)
    with pytest.raises(ValueError, match="window"):
        text.sequences(torch.arange(4), 4)


def test_preparation_is_deterministic_and_skips_index_and_other_files(tmp_path, fake_debian):
    first = text.prepare_corpus("fortunes", tmp_path / "a")
    second = text.prepare_corpus("fortunes", tmp_path / "b")
    assert first == tmp_path / "a" / "fortunes"
    assert (first / "corpus.sha256").read_text() == (second / "corpus.sha256").read_text()
    corpus = (first / "corpus.txt").read_bytes()
    assert (first / "corpus.sha256").read_text().split()[0] == hashlib.sha256(corpus).hexdigest()
    decoded = corpus.decode("utf-8")
    assert "never included" not in decoded and "\x00" not in decoded and not list(first.glob("*.part"))
    assert decoded.count("%\n") == 5 * len(text.FORTUNE_FILES)  # the file without a final "%" got one
    assert decoded.index("Fortune 0.0") < decoded.index("Fortune 1.0")  # "art" sorts first


def test_train_and_test_split_cover_the_text_at_a_fortune_boundary(tmp_path, fake_debian):
    train = text.read_corpus("fortunes", tmp_path, "train")
    test = text.read_corpus("fortunes", tmp_path, "test")
    whole = (tmp_path / "fortunes" / "corpus.txt").read_text(encoding="utf-8")
    assert train + test == whole
    assert train.endswith("\n%\n") and test.startswith("Fortune ")
    assert abs(len(train) / len(whole) - text.TRAIN_FRACTION) < 0.01


def test_damaged_copy_is_detected(tmp_path, fake_debian):
    folder = text.prepare_corpus("fortunes", tmp_path)
    corpus = folder / "corpus.txt"
    corpus.write_bytes(corpus.read_bytes().replace(b"bird", b"word", 1))
    with pytest.raises(ValueError, match="delete") as error:
        text.read_corpus("fortunes", tmp_path, "train")
    assert str(corpus) in str(error.value)


def test_missing_debian_files_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "DEBIAN_FORTUNES", tmp_path / "absent")
    with pytest.raises(DataUnavailable, match="as root: apt-get install -y fortunes"):
        text.prepare_corpus("fortunes", tmp_path / "root")
    assert not (tmp_path / "root" / "fortunes" / "corpus.txt").exists()


def test_missing_wikitext_names_the_files_the_folder_and_the_source(tmp_path):
    with pytest.raises(DataUnavailable) as error:
        text.read_corpus("wikitext-2", tmp_path, "train")
    message = str(error.value)
    for needed in ("wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens", str(tmp_path / "wikitext-2"), text.WIKITEXT_URL):
        assert needed in message


def test_wikitext_splits_are_read_from_the_placed_files(tmp_path):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"wiki.{split}.tokens").write_text(f" = {split} = \n", encoding="utf-8")
    assert text.read_corpus("wikitext-2", tmp_path, "test") == " = test = \n"


def test_unknown_names_and_splits_list_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="fortunes.*wikitext-2"):
        text.read_corpus("ptb", tmp_path, "train")
    with pytest.raises(ValueError, match="train.*test"):
        text.read_corpus("fortunes", tmp_path, "valid")


@pytest.mark.skipif(not text.DEBIAN_FORTUNES.is_dir(), reason="Debian's fortunes package is not installed")
def test_real_debian_fortunes(tmp_path):
    train = text.read_corpus("fortunes", tmp_path, "train")
    test = text.read_corpus("fortunes", tmp_path, "test")
    assert 2_000_000 < len(train) + len(test) < 4_000_000
    vocab = text.vocabulary(train)
    assert vocab[:3] == ("<unk>", " ", "e")
    assert (text.encode(test, vocab) == 0).float().mean() < 0.001
