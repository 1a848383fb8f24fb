"""The pre-fit check of image files on large or slow collections (session 34)."""

import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import automm.data as data
import automm.roles as roles
from automm import InputError


def test_relative_pathlib_paths_that_are_missing_get_the_working_directory_hint(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    monkeypatch.chdir(tmp_path / "images")
    with pytest.raises(InputError, match=r"relative paths are read from the working directory"):
        data.validate_images("image", [Path("images/a.png")] * 4)


def test_too_many_missing_image_files_say_what_passes(tmp_path):
    """30% of the photos missing (not downloaded): the error says that at most 5% may be, and that
    None marks a row without an image; with None there the column passes."""
    paths = _files(tmp_path, 7) + [str(tmp_path / f"gone{i}.png") for i in range(3)]
    with pytest.raises(InputError, match=r"3 of 10 images cannot be read: .*; at most 5% of a column's values may be "
                                         r"unreadable \(they then count as missing, with a warning\): give None where "
                                         r"a row has none"):
        data.validate_images("image", paths)
    assert data.validate_images("image", paths[:7] + [None] * 3) == []


def _files(folder, n):
    image = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for i in range(n):
        image.save(folder / f"{i}.png")
    return [str(folder / f"{i}.png") for i in range(n)]


def test_a_long_image_check_reports_its_progress(tmp_path, monkeypatch, caplog):
    paths = _files(tmp_path, 600)
    monkeypatch.setattr(data, "CHECK_PROGRESS_AFTER_S", 0.0)
    with caplog.at_level(logging.INFO, logger="automm.data"):
        assert data.validate_images("image", paths + paths[:10]) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "automm.data"]
    assert any("checking the image files of column 'image': 256 of 600" in m for m in messages), messages
    assert messages[-1].startswith("checked the image files of column 'image': 600 in")


def test_image_files_are_checked_by_threads_and_named_in_row_order(tmp_path, monkeypatch):
    paths = _files(tmp_path, 400)
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(Path(paths[0]).read_bytes()[:40])
    bad = [str(tmp_path / n) for n in ("dir.png", "empty.png", "cut.png", "gone.png")]
    column = paths[:50] + [bad[0]] + paths[50:120] + bad[1:] + [None] + paths[120:]
    real_open, opened = open, set()

    def slow_open(path, *args, **kwargs):  # a slow disk: only concurrent reads finish in time
        opened.add(threading.get_ident())
        time.sleep(0.01)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(data, "open", slow_open, raising=False)
    start = time.monotonic()
    with pytest.raises(InputError) as error:
        data.validate_images("image", column, tolerance=0.005)
    assert time.monotonic() - start < 0.01 * 400 / 2 and len(opened) > 1  # one at a time: 4 s
    message = str(error.value)
    assert message.startswith("column 'image': 4 of 404 images cannot be read: row 50 ('")
    assert ("dir.png'): a directory, not an image file; row 121 ('" in message
            and "empty.png'): an empty file (0 bytes: re-copy it); row 122 ('" in message
            and "cut.png'): not a readable image" in message and "gone.png'): file not found" in message)


def test_a_quick_image_check_says_nothing(tmp_path, caplog):
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(path)
    with caplog.at_level(logging.INFO, logger="automm.data"):
        data.validate_images("image", [str(path)] * 600)
    assert not [r for r in caplog.records if r.name == "automm.data"]


def test_a_verbose_models_predict_reports_long_work_on_new_rows(tmp_path, monkeypatch, capsys):
    from helpers import tiny

    from automm import AutoMM

    paths = _files(tmp_path, 300)
    model = AutoMM(**tiny()).fit(paths[:20], [0, 1] * 10)
    monkeypatch.setattr(data, "CHECK_PROGRESS_AFTER_S", 0.0)
    capsys.readouterr()
    model.predict(paths)
    assert "[automm]" not in capsys.readouterr().err  # verbose=0: silent
    model.set_params(verbose=1).predict(paths)
    assert "[automm] checked the image files of column 'x0': 300 in" in capsys.readouterr().err


def broken_inside_jpeg(path):
    """A JPEG whose header and end marker are intact (the check passes it) but whose data is not."""
    import io

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    for offset in range(300, len(data) - 200, 50):
        broken = data[:offset] + b"\0" * 64 + data[offset + 64:]
        try:
            with Image.open(io.BytesIO(broken)) as image:
                image.load()
        except OSError:
            path.write_bytes(broken)
            assert data_check_passes(path)
            return str(path)
    raise AssertionError("no offset broke the JPEG")


def data_check_passes(path):
    return data.validate_images("image", [str(path)], tolerance=0.0) == []


def test_an_image_broken_inside_counts_as_missing_in_training_and_prediction(tmp_path):
    from helpers import tiny

    from automm import AutoMM

    paths = _files(tmp_path, 40)
    paths[7] = broken_inside_jpeg(tmp_path / "broken.jpg")
    labels = [0, 1] * 20
    with pytest.warns(UserWarning, match=r"input 'image_0': cannot decode image .*broken.jpg.*the check before the "
                                         r"work passed it, but the data inside is broken: it counts as missing"):
        model = AutoMM(**tiny()).fit(paths, labels)  # it raised inside the first epoch
    with pytest.warns(UserWarning, match="broken.jpg"):
        assert model.predict(paths[:10]).shape == (10,)


def test_many_images_broken_inside_still_stop_the_work(tmp_path):
    from automm.components.image import CNNEncoder

    paths = [broken_inside_jpeg(tmp_path / f"{i}.jpg") for i in range(3)] + _files(tmp_path, 17)
    dataset = data.MultimodalDataset({"image_0": paths}, {"image_0": CNNEncoder(image_size=16, depth=2)})
    with pytest.warns(UserWarning, match="counts as missing"):
        assert dataset[0]["masks"]["image_0"] is False and dataset[3]["masks"]["image_0"] is True
    with pytest.raises(InputError, match=r"2 of 20 values of input 'image_0' could not be decoded"):
        dataset[1]


def test_an_image_over_pillows_pixel_limit_says_how_to_read_it(tmp_path, monkeypatch):
    """It was named only as "not a readable image (DecompressionBombError)"."""
    Image.new("RGB", (100, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels: over twice the limit
    reason = data._image_path_problem(str(tmp_path / "huge.png"))
    assert reason.startswith("not a readable image (DecompressionBombError: Image size (10000 pixels) exceeds")
    assert "PIL.Image.MAX_IMAGE_PIXELS" in reason


def test_an_image_over_pillows_warning_limit_is_named_once_with_its_row(tmp_path, monkeypatch):
    """Pillow's DecompressionBombWarning, which names no file, came twice in a fit (the check, then
    the decoding); over twice the limit the image is named (the test above)."""
    import warnings

    from helpers import tiny

    from automm import AutoMM

    paths = _files(tmp_path, 40)
    Image.new("RGB", (100, 100)).save(tmp_path / "large.png")
    paths[5] = str(tmp_path / "large.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # 10,000 pixels: over it, not over twice it

    def named_once(caught):
        named = [str(w.message) for w in caught if "pixel" in str(w.message).lower()]
        assert len(named) == 1, named
        path = data._short(paths[5])  # (its middle elided when long: a pytest-xdist worker's tmp_path)
        assert named[0].startswith("column 'x0': 1 of 40 images have more pixels than Pillow's decompression-bomb "
                                   f"limit (PIL.Image.MAX_IMAGE_PIXELS = 6,000): row 5 ({path}): 100x100;")
        assert not any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught)
        assert caught[0].filename == __file__

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = AutoMM(**tiny(max_epochs=1)).fit(paths, [0, 1] * 20)
    named_once(caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(paths)
    named_once(caught)


def test_the_image_check_leaves_the_warnings_shown_once_shown_once(tmp_path):
    """The check's ``catch_warnings`` (leaving out Pillow's pixel-limit warning) told ``warnings`` that its
    filters changed, which empties every place's memory of the warnings it has shown: after each ``predict``
    of images, the caller's own warnings, scikit-learn's and automm's came again."""
    import warnings

    paths = _files(tmp_path, 5)

    def callers_warning():
        warnings.warn("the caller's own warning", UserWarning)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            callers_warning()
            assert data.validate_images("image", paths) == []
    assert [str(w.message) for w in caught] == ["the caller's own warning"]
    Image.new("RGB", (100, 100)).save(tmp_path / "large.png")  # Pillow's own warning is still left out
    with warnings.catch_warnings(record=True) as caught, pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("always")
        patch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)
        data.validate_images("image", [*paths, str(tmp_path / "large.png")])
    assert [w.category for w in caught] == [data.AutoMMWarning]


def test_jfif_files_are_images():
    from automm.roles import infer_role_builtin

    assert infer_role_builtin([f"photos/{i}.jfif" for i in range(10)]) == "image"
    assert infer_role_builtin([f"photos/{i}.JPE" for i in range(10)]) == "image"


def _images_without_extension(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(folder / f"item{i}", format="PNG")
    return [f"item{i}" for i in range(n)]


def test_image_files_named_without_an_extension_are_images(tmp_path, monkeypatch):
    """They were read as text: a model learnt from the file names, without a word."""
    from automm.roles import infer_role_builtin

    names = _images_without_extension(tmp_path / "store", 30)
    assert infer_role_builtin([str(tmp_path / "store" / n) for n in names]) == "image"
    monkeypatch.chdir(tmp_path)
    assert infer_role_builtin([f"store/{n}" for n in names]) == "image"
    (tmp_path / "notes").mkdir()
    for n in names:  # files by the same names that are not images: their names are the text
        (tmp_path / "notes" / n).write_text("a note")
    assert infer_role_builtin([f"notes/{n}" for n in names]) == "text"
    assert infer_role_builtin([f"store/{n}" for n in names[:3]] + [f"word {i}" for i in range(27)]) == "text"


def test_relative_image_paths_without_an_extension_are_looked_up_in_the_data_folder(tmp_path, monkeypatch):
    import pandas as pd

    from automm.tables import resolve_image_paths

    names = _images_without_extension(tmp_path / "data" / "store", 25)
    frame = pd.DataFrame({"photo": [f"store/{n}" for n in names], "title": [f"thing {i}" for i in range(25)]})
    monkeypatch.chdir(tmp_path)
    resolved = resolve_image_paths(frame, [tmp_path / "data", tmp_path])
    assert resolved["photo"].tolist() == [str(tmp_path / "data" / "store" / n) for n in names]
    assert resolved["title"].tolist() == frame["title"].tolist()


def test_image_columns_of_mixed_kinds_urls_and_more_formats_are_image_columns():
    from PIL import Image

    from automm.roles import infer_role_builtin

    picture = Image.new("RGB", (4, 4), "red")
    assert infer_role_builtin([picture, "a.jpg", picture, "b.png", picture]) == "image"  # PIL images and paths
    assert infer_role_builtin(["https://cdn.example.com/x.jpg?v=1699"] * 5) == "image"  # then refused: a URL
    assert infer_role_builtin(["data:image/jpeg;base64,/9j/4AAQ"] * 5) == "image"
    assert infer_role_builtin(["a.ico", "b.jp2", "c.ppm", "d.tga", "e.avif"]) == "image"


@pytest.mark.parametrize("value, why", [("s3://bucket/b.jpg", "a URL; automm reads local files only"),
                                        ("https://x.org/a.jpg?v=2", "a URL; automm reads local files only"),
                                        ("data:image/png;base64,iVBORw0KGgo=", "a URL; automm reads local files"),
                                        ("file:///tmp/a.jpg", "a file:// URL; give the file's path itself")])
def test_urls_of_every_kind_are_named_as_urls_never_fetched(value, why):
    from automm.data import _image_path_problem

    assert _image_path_problem(value).startswith(why)


def test_a_pil_image_is_turned_upright_by_its_exif_orientation_as_its_file_is(tmp_path):
    from PIL import Image

    from automm.components.image import load_image

    image = Image.new("RGB", (20, 10), "red")
    exif = image.getexif()
    exif[0x0112] = 6  # turned 90 degrees
    image.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    with Image.open(tmp_path / "turned.jpg") as opened:
        assert load_image(opened).size == load_image(str(tmp_path / "turned.jpg")).size == (10, 20)


def test_palette_images_differing_in_their_palette_have_different_feature_keys():
    from PIL import Image

    from automm.feature_cache import content_digest

    image = Image.new("RGB", (8, 8), "yellow").convert("P")
    other = image.copy()
    palette = other.getpalette()
    other.putpalette([palette[i + 2 - 2 * (i % 3)] if i % 3 != 1 else palette[i] for i in range(len(palette))])
    assert content_digest(image) != content_digest(other)
    assert content_digest(Image.new("RGB", (8, 8), "red")) == content_digest(Image.new("RGB", (8, 8), "red"))


@pytest.mark.parametrize("form", ["JPEG", "PNG"])
def test_a_phone_photo_with_data_after_its_end_is_checked_without_decoding_it(tmp_path, monkeypatch, form):
    """A motion photo (its video after the JPEG's end), a Samsung trailer, a PNG with data appended:
    whole images whose last bytes are not their end marker. The check found the marker inside
    them instead of decoding each whole (130 ms a 12-megapixel photo, 400 times the check); one
    cut short before its end is still named."""
    import io

    from PIL import ImageFile

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # (an EXIF segment before the scan)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(
        buffer, form, exif=exif, **({"progressive": True} if form == "JPEG" else {}))
    image = buffer.getvalue()
    trailer = b"\0\0\0\x18ftypmp42" + b"\x01" * 4000 + b"SEFT"
    whole, cut = tmp_path / f"whole.{form.lower()}", tmp_path / f"cut.{form.lower()}"
    whole.write_bytes(image + trailer)
    cut.write_bytes(image[:len(image) // 2] + trailer)
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or real_load(self))
    assert data_check_passes(whole)
    assert decoded == []
    with pytest.raises(InputError, match=r"1 of 1 images cannot be read: row 0 \('.*cut"):
        data.validate_images("image", [str(cut)], tolerance=0.0)


def test_image_paths_with_spaces_around_them_are_images_read_without_the_spaces(tmp_path):
    """A spreadsheet's cells "1.png " made the column a text column of file names (the model learnt
    the paths' words, silently); now it is an image column whose files are read."""
    from automm.data import Table, validate_columns
    from automm.roles import infer_role_builtin

    paths = _files(tmp_path, 5)
    spaced = [p + " " for p in paths[:3]] + [" " + p for p in paths[3:]]
    assert infer_role_builtin(spaced) == "image"
    table = validate_columns(Table({"image": spaced}), {"image": "image"})
    assert list(table.columns["image"]) == paths


def test_a_path_whose_file_is_named_in_another_unicode_form_is_named_so(tmp_path):
    """'caf\\xe9.png' in the data, 'cafe\\u0301.png' on the disk (copied from macOS): the error said
    'file not found' of a file the user could see, under the same-looking name."""
    import unicodedata

    image = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for i in range(3):
        image.save(tmp_path / unicodedata.normalize("NFD", f"caf\u00e9{i}.png"))
    paths = [str(tmp_path / f"caf\u00e9{i}.png") for i in range(3)]
    with pytest.raises(InputError, match=r"'.*caf\\xe90\.png' is no file, but '.*cafe\\u03010\.png' is: the same name "
                                         r"with its accented letters written in another Unicode form \(NFD\).*"
                                         r"unicodedata\.normalize\('NFD', path\)"):
        data.validate_images("image", paths)


def _phone_photo_with_a_gain_map(path, orientation=6):
    """A 1600x1200 photo stored sideways (EXIF orientation 6), saved as an MPO with a second, smaller
    picture after it (an Ultra HDR photo's gain map, a depth map), as phones write them; the same
    first picture saved as a plain JPEG beside it."""
    pixels = np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    photo = Image.fromarray(pixels).resize((1600, 1200), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo.save(path, "MPO", save_all=True, append_images=[photo.resize((400, 300))], quality=90, exif=exif.tobytes())
    photo.save(path.with_name("plain.jpg"), "JPEG", quality=90, exif=exif.tobytes())
    return path


def test_a_phone_photo_holding_further_pictures_decodes_at_a_reduced_scale_upright(tmp_path):
    """Pillow opens a JPEG with further pictures after its first as an MPO: it decoded at full size
    (a 12-megapixel photo: 212 ms against 22 ms), where a JPEG decodes at a reduced scale."""
    import torch

    from automm.components.image import image_tensor, load_image

    path = _phone_photo_with_a_gain_map(tmp_path / "photo.jpg")
    with Image.open(path) as opened:
        assert opened.format == "MPO"
    drafted = load_image(path, draft_size=64)
    assert drafted.size == (150, 200)  # at 1/8 and upright: orientation 6 turns 1600x1200 to 1200x1600
    assert np.array_equal(np.asarray(drafted), np.asarray(load_image(tmp_path / "plain.jpg", draft_size=64)))
    assert np.array_equal(np.asarray(load_image(path.read_bytes(), draft_size=64)), np.asarray(drafted))
    assert load_image(path).size == (1200, 1600)  # no draft_size: the whole picture
    assert torch.equal(image_tensor(str(path), 64), image_tensor(str(tmp_path / "plain.jpg"), 64))


def test_a_phone_photo_holding_further_pictures_cut_short_is_named_by_the_check(tmp_path):
    """An MPO cut short (an interrupted copy) passed the check and failed only when decoded, inside
    training, where a JPEG cut short is named before any work."""
    whole = _phone_photo_with_a_gain_map(tmp_path / "photo.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[:len(whole) // 3])
    assert data_check_passes(tmp_path / "photo.jpg")
    with pytest.raises(InputError, match=r"1 of 1 images cannot be read: row 0 \('.*cut.jpg'\): truncated image file"):
        data.validate_images("image", [str(cut)], tolerance=0.0)


#: The first bytes of an iPhone's HEIC photo (an ISO media file whose brand is heic), which Pillow cannot open.
_HEIC_HEAD = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x01\x00meta" + bytes(300)


@pytest.mark.skipif("HEIF" in Image.registered_extensions().values(), reason="a HEIF plugin is registered")
def test_a_column_of_heic_photos_is_an_image_column_that_says_how_to_read_them(tmp_path, monkeypatch):
    """An iPhone's photos (IMG_1234.HEIC) were read as a text column of their file names, trained on
    without a word, and an image folder of them left them out: they are images that Pillow cannot
    read without pillow-heif, and the check says so."""
    from automm import AutoMM, read_image_folder
    from automm.components.image import load_image

    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # (not installed: an import of it fails)
    paths = []
    for i in range(12):
        (tmp_path / "photos" / "cats" if i % 2 else tmp_path / "photos" / "dogs").mkdir(parents=True, exist_ok=True)
        path = tmp_path / "photos" / ("cats" if i % 2 else "dogs") / f"IMG_{1000 + i}.HEIC"
        path.write_bytes(_HEIC_HEAD + bytes([i]))
        paths.append(str(path))
    with pytest.raises(InputError, match=r"column 'photo': 12 of 12 images cannot be read: row 0 \('.*IMG_1000.HEIC'\): "
                                         r"not a readable image \(a HEIC/HEIF photo, .*\); .* and 7 more: pip install "
                                         r"pillow-heif \(automm then reads them through it\)"):
        AutoMM(max_epochs=1).fit({"photo": paths}, ["cat", "dog"] * 6)
    assert len(read_image_folder(tmp_path / "photos")) == 12
    for path in paths:  # a content-addressed store's names, without an extension: images by their first bytes
        Path(path).rename(path[:-len(".HEIC")])
    assert roles.names_image_files([path[:-len(".HEIC")] for path in paths])
    with pytest.raises(InputError, match=r"<.* bytes>: a HEIC/HEIF photo, .*pip install pillow-heif"):
        load_image(_HEIC_HEAD)


def test_heic_photos_are_read_through_pillow_heif_where_it_is_installed_without_registering_it(tmp_path, monkeypatch):
    """The hint said to call pillow_heif.register_heif_opener() before fit and predict: a call the
    automm command's user cannot make (automm fit data.csv failed on every HEIC photo with
    pillow-heif installed), nor a script in a loader's spawned workers. automm registers it itself."""
    from PIL import ImageFile

    from automm.components.image import load_image

    class FakeHeif(ImageFile.ImageFile):  # pillow-heif's opener, reading the file's first bytes as pixels
        format, format_description = "HEIF", "HEIF"

        def _open(self):
            self._mode, self._size = "RGB", (8, 8)
            self.tile = [ImageFile._Tile("raw", (0, 0, 8, 8), 0, ("RGB", 0, 1))]

    registered = []

    def register_heif_opener():
        registered.append(1)
        Image.register_open("HEIF", FakeHeif, lambda prefix: prefix[4:12] == b"ftypheic")

    def unregister():
        Image.OPEN.pop("HEIF", None)
        Image.ID[:] = [name for name in Image.ID if name != "HEIF"]

    for name in ("OPEN", "ID", "EXTENSION", "MIME"):  # Pillow's registry, as it was after the test
        monkeypatch.setattr(Image, name, type(getattr(Image, name))(getattr(Image, name)))
    unregister()
    monkeypatch.setitem(sys.modules, "pillow_heif", type(sys)("pillow_heif"))
    sys.modules["pillow_heif"].register_heif_opener = register_heif_opener
    photo = tmp_path / "IMG_1000.HEIC"
    photo.write_bytes(_HEIC_HEAD)
    assert load_image(_HEIC_HEAD).size == (8, 8)  # (registered by the decoding)
    unregister()
    assert data_check_passes(photo)  # (registered by the check of the files)
    assert load_image(photo).size == (8, 8)
    assert registered == [1, 1]
    unregister()  # a broken HEIC with the opener registered: named, not tried again
    Image.register_open("HEIF", FakeHeif, lambda prefix: False)
    with pytest.raises(InputError, match=r"not a readable image file: .*HEIC/HEIF photo"):
        load_image(photo)
    assert registered == [1, 1]
