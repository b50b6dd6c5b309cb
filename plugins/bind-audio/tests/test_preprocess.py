"""Audio preprocessing: shapes, clip placement, bad inputs, and the resampler/filterbank building blocks."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from bind_audio import AudioArray, AudioConfig, AudioModality
from bind_audio import preprocess as preprocess_module
from bind_audio.fbank import log_mel, mel_bands, mel_filterbank
from bind_audio.preprocess import clip_windows, preprocess, spectrograms
from bind_audio.resample import input_range, resample_range, resampled_length

from bindcore import ConfigError, InputError


def test_default_output_shape_and_padding_value(tone):
    out = preprocess([AudioArray(tone(3.0, 16000)[0], 16000)], AudioConfig())
    assert out.shape == (1, 3, 1, 128, 204) and out.dtype == torch.float32
    # A full 2 s clip has 198 frames; the last 6 columns are padding: (0 - mean) / std.
    assert torch.allclose(out[..., 198:], torch.tensor((0 + 4.268) / 9.138))
    assert not torch.allclose(out[..., 197], torch.tensor((0 + 4.268) / 9.138))


@pytest.mark.parametrize(("num_samples", "expected"), [
    (192000, [(0, 32000), (80000, 112000), (160000, 192000)]),
    (80000, [(0, 32000), (24000, 56000), (48000, 80000)]),
    (41764, [(0, 32000), (4882, 36882), (9764, 41764)]),
    (8000, [(0, 8000)] * 3),
])
def test_clip_windows_follow_pinned_pytorchvideo(num_samples, expected):
    assert clip_windows(num_samples, 16000, 2.0, 3) == expected


def test_clip_windows_match_reference_slices(generation_meta):
    for name, meta in generation_meta["audio"].items():
        length = meta["resampled_num_samples"]
        expected = [(a, min(b, length)) for a, b in meta["clip_sample_slices"]]  # Python slicing clamps
        assert clip_windows(length, 16000, 2.0, 3) == expected, name


def test_single_clip_starts_at_zero():
    assert clip_windows(50000, 16000, 2.0, 1) == [(0, 32000)]


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (8000, 16000), (96000, 16000), (22050, 8000),
                                           (44101, 16000)])
def test_resample_window_matches_whole_signal(orig, new, tone):
    x = torch.from_numpy(tone(0.4, orig, channels=2))
    length = resampled_length(x.shape[-1], orig, new)
    whole = resample_range(x, 0, x.shape[-1], 0, length, orig, new)
    assert whole.shape == (2, length)
    a, b = length // 3, length // 3 + length // 4
    lo, hi = input_range(a, b, orig, new)
    lo, hi = max(lo, 0), min(hi, x.shape[-1])
    part = resample_range(x[:, lo:hi], lo, x.shape[-1], a, b, orig, new)
    torch.testing.assert_close(part, whole[:, a:b], atol=1e-6, rtol=0)


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (8000, 16000), (48000, 16000), (16000, 44100)])
def test_resample_matches_torchaudio(orig, new, tone):
    functional = pytest.importorskip("torchaudio.functional")
    x = torch.from_numpy(tone(0.3, orig, channels=1))
    expected = functional.resample(x, orig, new)
    got = resample_range(x, 0, x.shape[-1], 0, resampled_length(x.shape[-1], orig, new), orig, new)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_resample_gather_blocks_do_not_change_results(monkeypatch, tone):
    import bind_audio.resample as resample

    x = torch.from_numpy(tone(0.2, 44101))
    length = resampled_length(x.shape[-1], 44101, 16000)
    whole = resample_range(x, 0, x.shape[-1], 0, length, 44101, 16000)
    monkeypatch.setattr(resample, "GATHER_BLOCK", 777)
    torch.testing.assert_close(resample_range(x, 0, x.shape[-1], 0, length, 44101, 16000), whole, atol=0, rtol=0)


def test_resample_rejects_uncovered_input():
    x = torch.zeros(1, 100)
    with pytest.raises(ValueError, match="do not cover"):
        resample_range(x, 500, 10_000, 1000, 2000, 44100, 16000)


def test_log_mel_matches_torchaudio_kaldi_fbank(tone):
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    waves = [torch.from_numpy(tone(0.5, 16000, freq=1234.0)[0]) + 0.25,  # with a DC offset
             torch.from_numpy(tone(0.02, 16000)[0]),  # shorter than one window: no frames
             torch.from_numpy(tone(0.3, 16000, freq=300.0, amplitude=1e-3)[0])]
    got = log_mel(waves, sample_rate=16000, window=400, shift=160, fft_size=512, num_bins=128,
                  low_freq=20.0, high_freq=8000.0, preemphasis=0.97)
    expected = [kaldi.fbank(w[None], htk_compat=True, sample_frequency=16000, use_energy=False,
                            window_type="hanning", num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10)
                for w in (waves[0], waves[2])]
    assert [g.shape for g in got] == [expected[0].T.shape, (128, 0), expected[1].T.shape]
    # Log energies: an absolute error here is the energy's relative error. Weak bins of a frame (a tone with a DC
    # offset) keep ~1e-4 of float32 rounding from the FFT and mel sums, whose order differs between BLAS builds.
    torch.testing.assert_close(got[0], expected[0].T, atol=1e-3, rtol=0)
    torch.testing.assert_close(got[2], expected[1].T, atol=1e-3, rtol=0)


@pytest.mark.parametrize("seconds", [
    0.5,    # shorter than a clip: three equal clips, computed once
    2.0,    # exactly one clip long: three equal clips
    5.0,    # clips overlap on a common frame grid (starts 0, 1.5, 3 s): union of their frames
    2.61,   # clips overlap off the grid (start 0.305 s = 30.5 frames): separate runs
    12.0,   # no overlap
])
def test_shared_frames_equal_clips_computed_one_by_one(seconds, tone):
    config = AudioConfig()
    wave = tone(seconds, 16000, freq=700.0)[0] + 0.2 * np.sin(np.arange(int(seconds * 16000)) * 0.003) + 0.1
    ours = preprocess([AudioArray(wave, 16000)], config)[0]
    windows = clip_windows(len(wave), 16000, config.clip_duration, config.clips_per_item)
    one_by_one = spectrograms([torch.from_numpy(wave[a:b] - wave[a:b].mean()) for a, b in windows], config)
    torch.testing.assert_close(ours, one_by_one, atol=2e-4, rtol=0)


def test_grouping_inputs_does_not_change_results(monkeypatch, tone):
    config = AudioConfig(sample_rate=8000, clips_per_item=2, num_mel_bins=32, target_length=100)
    items = [AudioArray(tone(s, rate, freq=300.0 + 100 * i), rate)
             for i, (s, rate) in enumerate([(0.3, 8000), (3.0, 16000), (1.2, 44100), (0.04, 8000), (2.5, 8000)])]
    whole = preprocess(items, config)
    monkeypatch.setattr(preprocess_module, "GROUP_FRAMES", 1)  # every input its own group
    assert torch.equal(preprocess(items, config), whole)
    for index, item in enumerate(items):
        assert torch.equal(preprocess([item], config)[0], whole[index])


def test_output_is_an_ordinary_tensor_autograd_can_save(tone, tiny):
    images = preprocess([AudioArray(tone(1.5, 8000), 8000)], AudioModality(**tiny).config)
    assert not images.is_inference()  # preprocessing runs in inference mode, its output must not be such a tensor
    weight = torch.ones((), requires_grad=True)
    (images * weight).square().sum().backward()  # saves ``images`` for backward
    assert weight.grad is not None and torch.isfinite(weight.grad)


def test_reused_scratch_buffers_do_not_leak_between_calls(tone):
    options = dict(sample_rate=16000, window=400, shift=160, fft_size=512, num_bins=64, low_freq=20.0,
                   high_freq=8000.0, preemphasis=0.97)
    first, second = (torch.from_numpy(tone(1.0, 16000, freq=f)[0]) for f in (300.0, 2500.0))
    alone = log_mel([first], **options)[0].clone()
    kept = log_mel([first], **options)[0]
    log_mel([second], **options)  # same shapes: reuses the same scratch buffers
    assert torch.equal(kept, alone)  # results are never views of the scratch buffers
    with torch.inference_mode():  # separate buffers in inference mode
        in_inference = log_mel([first], **options)[0].clone()
        log_mel([second], **options)
    assert torch.equal(log_mel([first], **options)[0], alone)
    assert torch.equal(in_inference, alone)
    assert not torch.equal(log_mel([second], **options)[0], alone)


@pytest.mark.parametrize(("bins", "fft", "rate"), [(128, 512, 16000), (24, 256, 8000), (40, 1024, 44100)])
def test_mel_bands_reproduce_the_dense_bank(bins, fft, rate):
    power = torch.rand(37, fft // 2 + 1, 2, generator=torch.Generator().manual_seed(0))
    dense = (power[..., 0] + power[..., 1]) @ mel_filterbank(bins, fft, rate, 20.0, rate / 2)
    banded = torch.zeros(37, bins)
    flat = power.reshape(37, -1)
    for first, stop, lo, hi, weights in mel_bands(bins, fft, rate, 20.0, rate / 2):
        banded[:, first:stop] = flat[:, lo:hi] @ weights.T
    torch.testing.assert_close(banded, dense, atol=1e-5, rtol=1e-5)


def test_files_and_arrays_agree(write_wav, tone):
    samples = tone(2.5, 44100, channels=2)
    path = write_wav("a.wav", samples, 44100, subtype="FLOAT")
    config = AudioConfig()
    torch.testing.assert_close(preprocess([path], config), preprocess([AudioArray(samples, 44100)], config))
    torch.testing.assert_close(preprocess([str(path)], config), preprocess([(samples, 44100)], config))


@pytest.mark.parametrize("channel", ["first", "mean"])
def test_pcm16_files_read_as_int16_match_float_decoding(write_wav, tone, channel):
    path = write_wav("pcm.wav", tone(1.3, 22050, channels=3), 22050, subtype="PCM_16")
    decoded, rate = sf.read(str(path), dtype="float32", always_2d=True)  # libsndfile's own int16 -> float
    config = AudioConfig(channel=channel)
    torch.testing.assert_close(preprocess([path], config), preprocess([AudioArray(decoded.T, rate)], config),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_compressed_formats_decode(tmp_path, fmt, tone, tiny):
    path = tmp_path / f"a.{fmt}"
    sf.write(str(path), tone(1.5, 16000)[0], 16000)
    out = AudioModality(**tiny).preprocess([path])
    assert out.shape == (1, 2, 1, 32, 100) and torch.isfinite(out).all()


def test_channel_modes(tone, tiny):
    stereo = tone(1.0, 8000, channels=2)
    first = preprocess([AudioArray(stereo, 8000)], AudioConfig(**tiny))
    left = preprocess([AudioArray(stereo[0], 8000)], AudioConfig(**tiny))
    mixed = preprocess([AudioArray(stereo, 8000)], AudioConfig(**tiny, channel="mean"))
    down = preprocess([AudioArray(stereo.mean(0), 8000)], AudioConfig(**tiny))
    torch.testing.assert_close(first, left)
    torch.testing.assert_close(mixed, down, atol=1e-5, rtol=0)
    assert not torch.allclose(first, mixed, atol=1e-2)


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (96000, 2), (16000, 8), (44101, 1)])
def test_unusual_rates_and_channels_work(rate, channels, tone, tiny):
    out = preprocess([AudioArray(tone(1.2, rate, channels=channels), rate)], AudioConfig(**tiny))
    assert out.shape == (1, 2, 1, 32, 100) and torch.isfinite(out).all()


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (96000, 8)])
def test_unusual_files_work(write_wav, tone, tiny, rate, channels):
    path = write_wav(f"{rate}_{channels}.wav", tone(1.2, rate, channels=channels), rate)
    out = preprocess([path], AudioConfig(**tiny))
    assert out.shape == (1, 2, 1, 32, 100) and torch.isfinite(out).all()
    first = preprocess([AudioArray(sf.read(str(path), dtype="float32", always_2d=True)[0][:, 0], rate)],
                       AudioConfig(**tiny))
    torch.testing.assert_close(out, first, atol=1e-5, rtol=0)


def test_integer_pcm_arrays_are_scaled_like_files(tone, tiny):
    floats = tone(1.0, 8000)[0]
    pcm = np.round(floats * 32767).astype(np.int16)
    config = AudioConfig(**tiny)
    torch.testing.assert_close(preprocess([AudioArray(pcm, 8000)], config),
                               preprocess([AudioArray(pcm / 32768.0, 8000)], config))


def test_silence_is_finite_and_constant(tiny):
    out = preprocess([AudioArray(np.zeros(16000, np.float32), 8000)], AudioConfig(**tiny))
    assert torch.isfinite(out).all()
    floor = (np.log(np.finfo(np.float32).eps) + 4.268) / 9.138
    assert torch.allclose(out[..., :98], torch.tensor(floor, dtype=torch.float32), atol=1e-5)


SMALL_FRONT_END = AudioConfig(sample_rate=8000, clip_duration=1.0, clips_per_item=2, num_mel_bins=32, target_length=100)


def _error(item) -> InputError:
    with pytest.raises(InputError) as info:
        preprocess([item], SMALL_FRONT_END)
    return info.value


def test_bad_files_name_the_file(tmp_path, write_wav, tone):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(write_wav("full.wav", tone(1.0, 8000), 8000).read_bytes()[:30])
    cases = {empty: "empty", text: "cannot decode", header_only: "cannot decode",
             tmp_path / "missing.wav": "no such file", tmp_path: "directory"}
    for path, reason in cases.items():
        error = _error(path)
        assert str(path) in str(error) and reason in str(error)


def test_truncated_wav_uses_the_frames_present(write_wav, tone, tiny):
    path = write_wav("cut.wav", tone(2.0, 8000), 8000)
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 2 * 12000])  # header + 1.5 s of PCM16
    assert sf.info(str(path)).frames == 12000
    out = preprocess([path], AudioConfig(**tiny))
    expected = preprocess([AudioArray(sf.read(str(path), dtype="float32")[0], 8000)], AudioConfig(**tiny))
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("item", "reason"), [
    (AudioArray(np.zeros(0), 8000), "zero samples"),
    (AudioArray(np.zeros((2, 0)), 8000), "zero samples"),
    (AudioArray(np.zeros(100), 8000), "too short"),
    (AudioArray(np.zeros((16000, 2)), 8000), "transpose"),
    (AudioArray(np.zeros((1, 2, 3)), 8000), "1-D"),
    (AudioArray(np.zeros(8000), 0), "positive integer"),
    (AudioArray(np.zeros(8000), 44100.5), "positive integer"),
    (AudioArray(np.array(["a"] * 8000), 8000), "dtype"),
    (np.zeros(8000), "no sample rate"),
    (torch.zeros(8000), "no sample rate"),
    (12345, "unsupported"),
    (AudioArray(np.full(8000, 1e25, np.float32) * np.sin(np.arange(8000)), 8000), "overflows"),
])
def test_bad_arrays_raise_input_error(item, reason):
    assert reason in str(_error(item))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_rejected(bad, write_wav, tone):
    samples = tone(1.0, 8000)
    samples[0, 4321] = bad
    assert "sample 4321 is" in str(_error(AudioArray(samples, 8000)))
    path = write_wav("bad.wav", samples, 8000, subtype="FLOAT")
    error = _error(path)
    assert str(path) in str(error) and "NaN/Inf" in str(error)


def test_preprocess_needs_a_sequence():
    with pytest.raises(InputError, match="sequence"):
        preprocess("a.wav", AudioConfig())


def test_empty_batch(tiny):
    assert preprocess([], AudioConfig(**tiny)).shape == (0, 2, 1, 32, 100)


def test_hour_long_file_reads_only_the_clips(tmp_path, tiny):
    path = tmp_path / "hour.wav"
    rate, seconds = 8000, 3600
    with sf.SoundFile(str(path), "w", rate, 1, subtype="PCM_16") as handle:
        block = (0.1 * np.sin(np.arange(rate * 60) * 0.05)).astype(np.float32)
        for _ in range(seconds // 60):
            handle.write(block)
    assert path.stat().st_size > 50_000_000
    tracemalloc.start()
    out = preprocess([path], AudioConfig(**tiny))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.shape == (1, 2, 1, 32, 100) and torch.isfinite(out).all()
    assert peak < 5_000_000, f"peak numpy allocation {peak} bytes: the whole file was decoded"


@pytest.mark.parametrize(("options", "message"), [
    ({"num_mel_bins": 300}, "FFT bins"),
    ({"target_length": 8}, "patch_size"),
    ({"high_freq": 9000}, "Nyquist"),
    ({"clip_duration": 0.01}, "analysis window"),
    ({"width": 30, "num_heads": 4}, "divisible"),
    ({"sampel_rate": 8000}, "did you mean sample_rate"),
])
def test_inconsistent_configs_are_rejected(options, message):
    with pytest.raises(ConfigError, match=message):
        AudioModality(**options)


def test_path_objects_and_strings_are_accepted(write_wav, tone, tiny):
    path = write_wav("p.wav", tone(1.0, 8000), 8000)
    out = preprocess([path, str(path), Path(str(path))], AudioConfig(**tiny))
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out[0], out[2])


def _with_extra_chunk(path: Path) -> Path:
    """The same WAV with an odd-sized LIST chunk (plus its pad byte) between ``fmt `` and ``data``."""
    data = path.read_bytes()
    at = data.index(b"data")
    extra = b"LIST" + (5).to_bytes(4, "little") + b"INFOx" + b"\0"
    out = path.with_name("extra_" + path.name)
    riff_size = int.from_bytes(data[4:8], "little") + len(extra)
    out.write_bytes(data[:4] + riff_size.to_bytes(4, "little") + data[8:at] + extra + data[at:])
    return out


@pytest.mark.parametrize(("channels", "fmt", "subtype", "fast"), [
    (1, "WAV", "PCM_16", True), (2, "WAV", "PCM_16", True), (3, "WAVEX", "PCM_16", True),
    (2, "WAV", "PCM_24", False), (1, "WAV", "FLOAT", False), (1, "AIFF", "PCM_16", False),
])
def test_pcm16_wav_fast_reader_matches_libsndfile(tmp_path, tone, channels, fmt, subtype, fast):
    from bind_audio.inputs import WavPcm16Source, open_source

    path = tmp_path / f"x_{channels}.{'aiff' if fmt == 'AIFF' else 'wav'}"
    sf.write(str(path), tone(0.3, 11025, channels=channels).T, 11025, subtype=subtype, format=fmt)
    for candidate in [path, _with_extra_chunk(path)] if fmt != "AIFF" else [path]:
        expected = sf.read(str(candidate), dtype="float32", always_2d=True)[0].T
        with open_source(candidate) as source:
            assert isinstance(source, WavPcm16Source) == fast
            assert (source.num_frames, source.num_channels, source.sample_rate) == (expected.shape[1], channels, 11025)
            assert np.array_equal(source.read(0, source.num_frames), expected)
            assert np.array_equal(source.read(700, 1900), expected[:, 700:1900])
            assert np.array_equal(source.read_mono(5, 3000, "mean"), expected[:, 5:3000].mean(axis=0, dtype=np.float32))
