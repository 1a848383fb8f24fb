"""Image folders (one folder per class, optionally under split folders) read as tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from automm import AutoMM, InputError, read_image_folder
from automm.cli import main
from automm.recipes import RecipeError, load_recipe


@pytest.fixture
def photos(tmp_path, emoji_sample) -> Path:
    """The embedded emoji sample laid out as photos/<split>/<category>/<n>.png, with a hidden
    file and a text file that are not images."""
    root = tmp_path / "photos"
    for i, row in emoji_sample.iterrows():
        folder = root / row["split"] / row["category"].replace(" & ", " and ")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(row["image"], folder / f"{i}.png")
    (root / "train" / "Flags" / ".DS_Store").write_bytes(b"\0")
    (root / "train" / "Flags" / "notes.txt").write_text("not an image")
    return root


def test_split_and_class_folders(photos, emoji_sample):
    frame = read_image_folder(photos)
    assert list(frame.columns) == ["image", "label", "split"]
    assert len(frame) == len(emoji_sample)
    assert frame["split"].value_counts().to_dict() == emoji_sample["split"].value_counts().to_dict()
    expected = emoji_sample["category"].str.replace(" & ", " and ").value_counts().to_dict()
    assert frame["label"].value_counts().to_dict() == expected
    assert all(Path(p).is_absolute() and Path(p).suffix == ".png" for p in frame["image"])
    assert frame["image"].is_unique


def test_class_folders_alone_and_images_without_a_class(photos):
    frame = read_image_folder(photos / "train")  # no split level
    assert list(frame.columns) == ["image", "label"] and frame["label"].notna().all()
    flags = read_image_folder(photos / "test" / "Flags")  # images only: nothing to learn, something to predict
    assert list(flags.columns) == ["image", "label"] and flags["label"].isna().all() and len(flags) > 0


def test_folder_names_that_are_no_text_in_the_file_name_encoding(tmp_path, emoji_sample):
    """A class folder named in Latin-1 (`caf\\xe9`, which UTF-8 cannot read), or under the C locale
    with UTF-8 mode off any name that is not ASCII (`caf\xe9`): Python names it with the escapes of
    its bytes, which pandas' Arrow strings refuse (`read_image_folder` raised UnicodeEncodeError).
    The class is the name's UTF-8 text, its bytes that are none written as `\\xe9`; the paths open."""
    import os

    root = tmp_path / "photos"
    for name in (b"caf\xe9", b"tea"):
        os.makedirs(os.fsencode(root) + b"/" + name)
        for i, image in enumerate(emoji_sample["image"].head(3)):
            shutil.copy(image, os.fsdecode(os.fsencode(root) + b"/" + name + f"/{i}.png".encode()))
    frame = read_image_folder(root)
    assert sorted(frame["label"].unique()) == ["caf\\xe9", "tea"] and len(frame) == 6
    assert all(Path(p).is_file() for p in frame["image"])
    frame["label"].astype(str).value_counts()  # (as automm init counts the classes)


def test_what_is_not_an_image_folder(tmp_path, photos):
    with pytest.raises(InputError, match="is not a folder"):
        read_image_folder(tmp_path / "missing")
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(InputError, match=r"holds no image files .* expected class folders of images"):
        read_image_folder(tmp_path / "empty")


def test_a_recipe_reads_a_folder_like_a_file(photos, tmp_path):
    recipe = {"data": {"path": "photos", "label": "label", "split_column": "split"}}
    data = load_recipe(recipe, base_dir=tmp_path, require_data=True).load_data()
    assert list(data.X_train.columns) == ["image"] and len(data.X_train) == 288 and len(data.X_test) == 108
    wrong = {"data": {"path": "photos", "label": "category"}}
    with pytest.raises(RecipeError, match=r"data.label.*'category'.*"):
        load_recipe(wrong, base_dir=tmp_path, require_data=True)
    (tmp_path / "file.csv").write_text("image,label\n")
    with pytest.raises(RecipeError, match=r"a folder of images"):
        load_recipe({"data": {"path": "file.csv", "format": "folder", "label": "label"}}, base_dir=tmp_path,
                    require_data=True)


def test_fit_and_predict_from_folders_in_python_and_on_the_command_line(photos, tmp_path, capsys, monkeypatch):
    frame = read_image_folder(photos)
    train = frame[frame["split"] == "train"]
    tiny = dict(max_epochs=1, encoders={"image": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1,
                                                  "output_dim": 16}}, augmentations=None, random_state=0)
    model = AutoMM(**tiny).fit(train[["image"]], train["label"])
    assert set(model.classes_) == set(train["label"])

    monkeypatch.chdir(tmp_path)
    sets = ["--set", "search.time_limit=null", "--set", "training.max_epochs=1", "--set", "data.max_rows=60",
            "--set", "components.encoders.image={name: cnn, image_size: 16, width: 4, depth: 1, output_dim: 16}"]
    assert main(["fit", "photos", "--label", "label", "-q", *sets]) == 0
    model_dir = capsys.readouterr().out.strip()
    assert Path(model_dir) == tmp_path / "automm-models" / "photos"
    out = tmp_path / "flags.csv"
    assert main(["predict", model_dir, str(photos / "test" / "Flags"), "--keep", "image", "-o", str(out)]) == 0
    predictions = pd.read_csv(out)
    assert list(predictions.columns) == ["image", "prediction"]
    assert len(predictions) == len(list((photos / "test" / "Flags").glob("*.png")))
    assert main(["evaluate", model_dir, "photos", "--filter", "split=test", "--json"]) == 0
    assert '"n": 108' in capsys.readouterr().out


def test_upper_case_extensions_hidden_files_and_a_class_named_like_a_split(tmp_path, emoji_sample):
    """A camera's ``IMG_1.JPG`` is an image, a hidden ``._IMG_1.PNG`` (the resource fork a Mac
    leaves in a zip) is not; class folders one of which is named like a split (``test``,
    ``dev``) are class folders, not a split layout (that needs every folder a split)."""
    image = emoji_sample["image"].iloc[0]
    for folder, name in (("cat", "IMG_1.PNG"), ("cat", "b.png"), ("dev", "c.Png")):
        (tmp_path / "photos" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(image, tmp_path / "photos" / folder / name)
    (tmp_path / "photos" / "cat" / "._IMG_1.PNG").write_bytes(b"\0\5\26\7")
    frame = read_image_folder(tmp_path / "photos")
    assert list(frame.columns) == ["image", "label"]
    assert sorted(Path(p).name for p in frame["image"]) == ["IMG_1.PNG", "b.png", "c.Png"]
    assert frame["label"].tolist() == ["cat", "cat", "dev"]
