"""The clotho, audiocaps, audioset and vggsound readers on fixture trees in the datasets' published layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from bind_audio.benchmarks_paper import (
    AUDIOCAPS,
    AUDIOSET,
    CLOTHO,
    VGGSOUND,
    AudioCapsOptions,
    AudioFolderOptions,
)
from bind_audio.youtube_clips import ClipIndex, candidate_stems
from pydantic import ValidationError

from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import NoOptions


def wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, np.float32), 16000)
    return path


def test_clotho_five_queries_per_clip(tmp_path: Path):
    (tmp_path / "clotho_captions_evaluation.csv").write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
        "Santa Motor.wav,a machine whines,a motor hums,\"an engine, then quiet\",d1,e1\n"
        "missing.wav,a,b,c,d,e\n"
        "rain.wav,rain falls,rain on a roof,water drips,drops,a storm\n")
    wav(tmp_path / "evaluation/Santa Motor.wav")
    wav(tmp_path / "evaluation/rain.wav")
    data = CLOTHO.read(tmp_path, NoOptions())
    assert data.query_modality == "text"
    assert data.gallery == [tmp_path / "evaluation/Santa Motor.wav", tmp_path / "evaluation/rain.wav"]
    assert data.queries[:3] == ["a machine whines", "a motor hums", "an engine, then quiet"]
    assert data.relevant == [0] * 5 + [1] * 5
    assert data.query_sources[5] == "clotho_captions_evaluation.csv line 4 caption_1"
    assert [p.source for p in data.problems] == ["clotho_captions_evaluation.csv line 3: evaluation/missing.wav"]
    assert CLOTHO.paper == {"R@1": 0.060, "R@10": 0.284}


def test_clotho_wrong_root_names_the_caption_file(tmp_path: Path):
    with pytest.raises(InputError, match=r"clotho_captions_evaluation\.csv"):
        CLOTHO.read(tmp_path, NoOptions())
    (tmp_path / "clotho_captions_evaluation.csv").write_text("file_name,caption\nx.wav,y\n")
    with pytest.raises(InputError, match="caption_1"):
        CLOTHO.read(tmp_path, NoOptions())


def test_audiocaps_csv_test_list_and_local_clip_names(tmp_path: Path):
    test_list = tmp_path / "ib_test.csv"
    test_list.write_text("audiocap_id,youtube_id,start_time,caption\n"
                         "103549,7fmOlUlwoNg,20,A dog barks\n"
                         "103548,7fmOlUlwoNg,20,A dog barks twice\n"
                         "103541,--0w1YA1Hm4,30,Rain\n"
                         "103540,gone1234567,0,Nothing here\n")
    wav(tmp_path / "clips/7fmOlUlwoNg_20.wav")
    wav(tmp_path / "clips/sub/Y--0w1YA1Hm4.flac")
    data = AUDIOCAPS.read(tmp_path, AudioCapsOptions(test_list=test_list))
    assert data.gallery == [tmp_path / "clips/7fmOlUlwoNg_20.wav", tmp_path / "clips/sub/Y--0w1YA1Hm4.flac"]
    assert data.queries == ["A dog barks", "A dog barks twice", "Rain"]
    assert data.relevant == [0, 0, 1]
    assert [p.source for p in data.problems] == ["ib_test.csv line 5: gone1234567 0"]
    assert "no local clip" in data.problems[0].reason


def test_audiocaps_tsv_with_audio_paths(tmp_path: Path):
    test_list = tmp_path / "audiocaps_test_ib.tsv"
    test_list.write_text("uniq_id\taudio\ttext\tduration\n0\taudio/test/0.flac\tConstant rattling\t10.0\n"
                         "1\taudio/test/1.flac\tA rocket flies by\t7.384\n")
    wav(tmp_path / "audio/test/0.flac")
    data = AUDIOCAPS.read(tmp_path, AudioCapsOptions(test_list=test_list))
    assert data.gallery == [tmp_path / "audio/test/0.flac"] and data.queries == ["Constant rattling"]
    assert [p.source for p in data.problems] == ["audiocaps_test_ib.tsv line 3: audio/test/1.flac"]


def test_audiocaps_needs_its_test_list(tmp_path: Path):
    with pytest.raises(ValidationError):
        AudioCapsOptions()
    with pytest.raises(ValidationError):
        AudioCapsOptions(test_list="a.csv", split="test")
    with pytest.raises(InputError, match="test list"):
        AUDIOCAPS.read(tmp_path, AudioCapsOptions(test_list=tmp_path / "none.csv"))


AUDIOSET_CLASSES = 'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n' \
                   '2,/m/0jbk,"Animal"\n'
AUDIOSET_SEGMENTS = ("# Segments csv created Sun Mar  5 10:54:25 2017\n"
                     "# num_ytids=4, num_segs=4, num_unique_labels=3, num_positive_labels=6\n"
                     "# YTID, start_seconds, end_seconds, positive_labels\n"
                     '--4gqARaEJE, 0.000, 10.000, "/m/09x0r,/m/0jbk"\n'
                     '--BfvyPmVMo, 20.000, 30.000, "/m/05zppz"\n'
                     '--U7joUcTCo, 0.000, 10.000, "/m/0jbk"\n'
                     '-0BIyqJj9ZU, 30.000, 40.000, "/m/09x0r,/m/nope"\n')


def test_audioset_multilabel_over_the_class_list(tmp_path: Path):
    (tmp_path / "class_labels_indices.csv").write_text(AUDIOSET_CLASSES)
    (tmp_path / "eval_segments.csv").write_text(AUDIOSET_SEGMENTS)
    wav(tmp_path / "eval/--4gqARaEJE_0.000_10.000.wav")
    wav(tmp_path / "eval/--BfvyPmVMo_20.wav")
    wav(tmp_path / "eval/-0BIyqJj9ZU.wav")
    data = AUDIOSET.read(tmp_path, AudioFolderOptions())
    assert data.class_names == [["Speech"], ["Male speech, man speaking"], ["Animal"]]
    assert data.items == [tmp_path / "eval/--4gqARaEJE_0.000_10.000.wav", tmp_path / "eval/--BfvyPmVMo_20.wav"]
    assert data.labels == [[0, 2], [1]]
    assert [p.source for p in data.problems] == ["eval_segments.csv line 6: --U7joUcTCo",
                                                 "eval_segments.csv line 7: -0BIyqJj9ZU"]
    assert "no local clip" in data.problems[0].reason and "/m/nope" in data.problems[1].reason
    assert AUDIOSET.task == "multilabel" and AUDIOSET.paper == {"mAP": 0.176}


def test_audioset_wrong_root_names_the_files(tmp_path: Path):
    with pytest.raises(InputError, match=r"class_labels_indices\.csv"):
        AUDIOSET.read(tmp_path, AudioFolderOptions())
    (tmp_path / "class_labels_indices.csv").write_text(AUDIOSET_CLASSES)
    with pytest.raises(InputError, match=r"eval_segments\.csv"):
        AUDIOSET.read(tmp_path, AudioFolderOptions())


def test_vggsound_test_rows_and_classes_of_the_whole_file(tmp_path: Path):
    (tmp_path / "vggsound.csv").write_text("---g-f_I2yQ,1,people marching,test\n"
                                           "--0PQM4-hqg,30,waterfall burbling,train\n"
                                           "--56QUhyDQM,185,\"playing tennis, outdoors\",test\n"
                                           "--5OkAjCI7g,40,people marching,test\n")
    wav(tmp_path / "audio/---g-f_I2yQ_000001.wav")
    wav(tmp_path / "audio/--56QUhyDQM_000185.flac")
    data = VGGSOUND.read(tmp_path, AudioFolderOptions(audio_dir=tmp_path / "audio"))
    assert data.class_names == [["people marching"], ["playing tennis, outdoors"], ["waterfall burbling"]]
    assert data.items == [tmp_path / "audio/---g-f_I2yQ_000001.wav", tmp_path / "audio/--56QUhyDQM_000185.flac"]
    assert data.labels == [0, 1]
    assert [p.source for p in data.problems] == ["vggsound.csv line 4: --5OkAjCI7g 40"]


def test_vggsound_wrong_root_and_malformed_rows(tmp_path: Path):
    with pytest.raises(InputError, match=r"vggsound\.csv"):
        VGGSOUND.read(tmp_path, AudioFolderOptions())
    (tmp_path / "vggsound.csv").write_text("a,1,b,test\nc,2,d\n")
    with pytest.raises(InputError, match="line 2"):
        VGGSOUND.read(tmp_path, AudioFolderOptions())


def test_clip_names_and_ambiguity(tmp_path: Path):
    assert candidate_stems("abc", "30.000")[:2] == ["abc_30.000", "abc_30.0"]
    assert {"abc_30", "abc_000030", "abc_30000", "abc", "Yabc"} <= set(candidate_stems("abc", "30.000"))
    wav(tmp_path / "a/abc_30.wav")
    wav(tmp_path / "b/abc_30.flac")
    found, why = ClipIndex(tmp_path).find("abc", "30")
    assert found is None and why.startswith("ambiguous: 2 files")


def test_plugin_registers_the_paper_benchmarks():
    import bind_audio

    registered = []
    bind_audio.register_benchmarks(registered.append)
    assert [b.name for b in registered] == ["clotho", "audiocaps", "audioset", "vggsound"]
