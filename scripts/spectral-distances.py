#!/usr/bin/env python3
"""Distances `timbrel eval` does not use, to check that a gain in its score (64 mel bands,
FFT 1,024, hop 256) is not only the score's own resolution being fitted.

    python3 scripts/spectral-distances.py ORIGINALS_DIR RENDERS_DIR [RENDERS_DIR ...]

ORIGINALS_DIR holds the originals (a dataset's `audio/`), each RENDERS_DIR what
`timbrel eval --out DIR` wrote (blends are skipped). For each RENDERS_DIR it prints the
mean over its notes of: a 128-band log-mel distance (FFT 2,048, hop 512), the spectral
convergence (FFT 512, hop 128), and log-magnitude distances on linear bins at FFT 2,048
(fine in frequency) and 128 (fine in time); every dB distance clips both spectrograms 80
dB under the original's peak, as the score does (the score also floors each band at a 16-bit
file's rounding noise; these do not). Needs numpy and scipy (pip install).
"""

import glob
import os
import sys

import numpy as np
import scipy.io.wavfile as wavfile
from scipy.signal import stft

SR = 16000
FLOOR_DB = 80.0


def load(path):
    _, x = wavfile.read(path)
    return x.astype(np.float64) / 32768.0


def mel_filters(bands, n_fft):
    """Triangular HTK mel bands from 0 Hz to Nyquist, [band][bin]."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    edges = hz(np.linspace(0.0, mel(SR / 2), bands + 2))
    freqs = np.linspace(0.0, SR / 2, n_fft // 2 + 1)
    fb = np.zeros((bands, len(freqs)))
    for b in range(bands):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        fb[b] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0.0, None)
    return fb


MEL_128 = mel_filters(128, 2048)


def power(x, n_fft, hop):
    # scipy scales a frame by 1 / sum(window) (n_fft / 2 for Hann); undone, as `timbrel
    # eval` does not scale, so that the 1e-10 under the logarithm sits as far under a
    # quiet note as it does there (scaled, it clipped the tails of quiet notes).
    z = stft(x, SR, nperseg=n_fft, noverlap=n_fft - hop, boundary=None)[2] * (n_fft / 2)
    return np.abs(z) ** 2


def db_distance(a_power, b_power):
    a = 10.0 * np.log10(a_power + 1e-10)
    b = 10.0 * np.log10(b_power + 1e-10)
    floor = a.max() - FLOOR_DB
    return np.mean(np.abs(np.maximum(a, floor) - np.maximum(b, floor)))


def measures(original, render):
    fine_o, fine_r = power(original, 2048, 512), power(render, 2048, 512)
    mag_o, mag_r = np.sqrt(power(original, 512, 128)), np.sqrt(power(render, 512, 128))
    return (
        db_distance(MEL_128 @ fine_o, MEL_128 @ fine_r),
        np.linalg.norm(mag_o - mag_r) / np.linalg.norm(mag_o),
        db_distance(fine_o, fine_r),
        db_distance(power(original, 128, 32), power(render, 128, 32)),
    )


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    originals, renders = sys.argv[1], sys.argv[2:]
    for folder in renders:
        names = sorted(
            os.path.basename(p)
            for p in glob.glob(os.path.join(folder, "*.wav"))
            if not os.path.basename(p).startswith("blend")
        )
        rows = []
        for name in names:
            original, render = load(os.path.join(originals, name)), load(os.path.join(folder, name))
            n = min(len(original), len(render))
            rows.append(measures(original[:n], render[:n]))
        m = np.mean(rows, axis=0)
        print(
            f"{folder}: {len(names)} notes: log-mel 128 bands {m[0]:.2f} dB, spectral convergence"
            f" {m[1]:.3f}, linear FFT 2048 {m[2]:.2f} dB, linear FFT 128 {m[3]:.2f} dB"
        )


if __name__ == "__main__":
    main()
