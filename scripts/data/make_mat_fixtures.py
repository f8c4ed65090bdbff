#!/usr/bin/env python3
"""Writes the MATLAB v5 fixtures of test/matlab_v5.test.ts and test/benchmark_datasets.test.ts.

Run by hand (never by the tests), from the repository root, with Debian's python3-scipy:

    apt-get install -y python3-scipy
    python3 scripts/data/make_mat_fixtures.py [--out test/fixtures/mat]

Files written (all small):

- cars_annos_compressed.mat, cars_annos_plain.mat: a miniature `cars_annos.mat` of Cars196 as
  scipy.io.savemat writes it (v5, with and without miCOMPRESSED): the struct array `annotations`
  (1x10, fields relative_im_path, bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, test) and the cell
  `class_names` (1x196). Classes 1, 98 (train side) and 99, 196 (test side); the `test` flags are
  mixed on both sides, since the retrieval split ignores them.
- cars_annos_matlab_le.mat, cars_annos_matlab_be.mat: the same content written byte by byte the way
  MATLAB itself writes v5/v7 files (which scipy does not): char data as miUINT16, double-class
  numbers stored in the smallest integer type (miUINT8/miUINT16), small data elements packed in
  the tag, variables in miCOMPRESSED elements without padding; little- and big-endian. Each is
  read back with scipy.io.loadmat and checked before it is written.
- misc.mat: one variable per numeric class (int8..uint64, single, double, logical, complex), a
  2x2 double (column-major order), a 2x3 char matrix, empty arrays, a nested struct and a mixed
  cell, as scipy writes them.
"""
import argparse
import os
import struct
import zlib

import numpy as np
import scipy.io

# Miniature Cars196 annotations: (relative_im_path, x1, y1, x2, y2, class, test).
ANNOTATIONS = [
    ("car_ims/000001.jpg", 112, 7, 853, 717, 1, 0),
    ("car_ims/000002.jpg", 48, 24, 441, 202, 1, 1),
    ("car_ims/000003.jpg", 7, 4, 277, 180, 99, 0),
    ("car_ims/000004.jpg", 33, 50, 197, 150, 1, 0),
    ("car_ims/000005.jpg", 5, 8, 83, 58, 98, 1),
    ("car_ims/000006.jpg", 1, 1, 300, 200, 196, 0),
    ("car_ims/000007.jpg", 10, 12, 250, 140, 98, 0),
    ("car_ims/000008.jpg", 20, 30, 400, 260, 99, 1),
    ("car_ims/000009.jpg", 3, 3, 60, 40, 196, 1),
    ("car_ims/000010.jpg", 9, 9, 99, 66, 196, 1),
]
FIELDS = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
KNOWN_NAMES = {1: "AM General Hummer SUV 2000", 98: "Ferrari 458 Italia Coupe 2012",
               99: "Ferrari 458 Italia Convertible 2012", 196: "smart fortwo Convertible 2012"}
CLASS_NAMES = [KNOWN_NAMES.get(i, f"Make{i:03d} Model Sedan 2012") for i in range(1, 197)]


def scipy_cars(path, compress):
    dtype = [(f, object) for f in FIELDS]
    annos = np.zeros((1, len(ANNOTATIONS)), dtype=dtype)
    for j, (p, x1, y1, x2, y2, c, t) in enumerate(ANNOTATIONS):
        annos[0, j] = (np.array([p]), np.array([[x1]], np.uint16), np.array([[y1]], np.uint16),
                       np.array([[x2]], np.uint16), np.array([[y2]], np.uint16),
                       np.array([[c]], np.uint8), np.array([[t]], np.uint8))
    names = np.empty((1, len(CLASS_NAMES)), dtype=object)
    for i, n in enumerate(CLASS_NAMES):
        names[0, i] = np.array([n])
    scipy.io.savemat(path, {"annotations": annos, "class_names": names}, do_compression=compress)


# ------------------------------------------------------------------ a MATLAB-style writer

MI = dict(INT8=1, UINT8=2, INT16=3, UINT16=4, INT32=5, UINT32=6, SINGLE=7, DOUBLE=9, MATRIX=14, COMPRESSED=15)
MX = dict(CELL=1, STRUCT=2, CHAR=4, DOUBLE=6)


class MatlabWriter:
    def __init__(self, bo):
        self.bo = bo  # '<' or '>'

    def element(self, mtype, payload):
        n = len(payload)
        if 0 < n <= 4:  # small data element: bytes count in the upper half of the tag's first word
            return struct.pack(self.bo + "I", (n << 16) | mtype) + payload + b"\0" * (4 - n)
        return struct.pack(self.bo + "II", mtype, n) + payload + b"\0" * (-n % 8)

    def matrix(self, mxclass, dims, body, name=b""):
        flags = self.element(MI["UINT32"], struct.pack(self.bo + "II", mxclass, 0))
        dim = self.element(MI["INT32"], struct.pack(self.bo + "%di" % len(dims), *dims))
        nm = self.element(MI["INT8"], name) if name else struct.pack(self.bo + "II", MI["INT8"], 0)
        content = flags + dim + nm + body
        return struct.pack(self.bo + "II", MI["MATRIX"], len(content)) + content

    def char(self, text):
        return self.matrix(MX["CHAR"], [1, len(text)], self.element(MI["UINT16"], struct.pack(self.bo + "%dH" % len(text), *map(ord, text))))

    def double_as_int(self, value):
        # MATLAB stores a double holding small non-negative integers in the smallest integer type.
        if value < 256:
            data = self.element(MI["UINT8"], struct.pack(self.bo + "B", value))
        else:
            data = self.element(MI["UINT16"], struct.pack(self.bo + "H", value))
        return self.matrix(MX["DOUBLE"], [1, 1], data)

    def struct_array(self, fields, rows, name):
        width = 32  # MATLAB pads field names to 32 bytes
        body = self.element(MI["INT32"], struct.pack(self.bo + "i", width))
        body += self.element(MI["INT8"], b"".join(f.encode().ljust(width, b"\0") for f in fields))
        for row in rows:
            for value in row:
                body += value
        return self.matrix(MX["STRUCT"], [1, len(rows)], body, name)

    def cell(self, values, name):
        return self.matrix(MX["CELL"], [1, len(values)], b"".join(values), name)

    def header(self):
        text = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024"
        return text.ljust(116, b" ") + b"\0" * 8 + struct.pack(self.bo + "H", 0x0100) + struct.pack(self.bo + "H", (ord("M") << 8) | ord("I"))

    def variable(self, element, compress):
        if not compress:
            return element
        z = zlib.compress(element)
        return struct.pack(self.bo + "II", MI["COMPRESSED"], len(z)) + z


def matlab_cars(path, bo, compress):
    w = MatlabWriter(bo)
    rows = [[w.char(p), *(w.double_as_int(v) for v in (x1, y1, x2, y2, c, t))] for (p, x1, y1, x2, y2, c, t) in ANNOTATIONS]
    data = w.header()
    data += w.variable(w.struct_array(FIELDS, rows, b"annotations"), compress)
    data += w.variable(w.cell([w.char(n) for n in CLASS_NAMES], b"class_names"), compress)
    with open(path, "wb") as f:
        f.write(data)


def check_cars(path):
    m = scipy.io.loadmat(path)
    a = m["annotations"]
    assert a.shape == (1, len(ANNOTATIONS)), a.shape
    for j, want in enumerate(ANNOTATIONS):
        rec = a[0, j]
        assert str(rec["relative_im_path"][0]) == want[0], rec["relative_im_path"]
        got = [int(rec[f][0, 0]) for f in FIELDS[1:]]
        assert got == list(want[1:]), (got, want)
    names = [str(m["class_names"][0, i][0]) for i in range(m["class_names"].shape[1])]
    assert names == CLASS_NAMES


def misc(path):
    nested = {"a": 1.5, "inner": {"word": "deep", "n": np.array([[1.0, 2.0, 3.0]])}}
    cellmix = np.empty((1, 3), dtype=object)
    cellmix[0, 0] = "text"
    cellmix[0, 1] = np.array([[7.0]])
    cellmix[0, 2] = np.zeros((0, 0))
    scipy.io.savemat(path, {
        "d": np.array([[1.5, -2.0], [3.0, 4e10]]),
        "f32": np.array([[0.25, -1.0]], np.float32),
        "i8": np.array([[-3, 4]], np.int8),
        "u8": np.array([[0, 255]], np.uint8),
        "i16": np.array([[-30000, 2]], np.int16),
        "u16": np.array([[65535, 1]], np.uint16),
        "i32": np.array([[-2000000000, 5]], np.int32),
        "u32": np.array([[4000000000, 6]], np.uint32),
        "i64": np.array([[-(2 ** 40), 7]], np.int64),
        "u64": np.array([[2 ** 63 + 5, 8]], np.uint64),
        "b": np.array([[True, False, True]]),
        "z": np.array([[1 + 2j, -3j]]),
        "s2": np.array(["abc", "xyz"]),
        "empty": np.zeros((0, 0)),
        "emptystr": "",
        "nested": nested,
        "cellmix": cellmix,
    })


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures/mat")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    for name, compress in (("cars_annos_compressed.mat", True), ("cars_annos_plain.mat", False)):
        scipy_cars(os.path.join(out, name), compress)
        check_cars(os.path.join(out, name))
    for name, bo, compress in (("cars_annos_matlab_le.mat", "<", True), ("cars_annos_matlab_be.mat", ">", False)):
        matlab_cars(os.path.join(out, name), bo, compress)
        check_cars(os.path.join(out, name))
    misc(os.path.join(out, "misc.mat"))
    for f in sorted(os.listdir(out)):
        print(f"{os.path.join(out, f)}: {os.path.getsize(os.path.join(out, f))} bytes")


if __name__ == "__main__":
    main()
