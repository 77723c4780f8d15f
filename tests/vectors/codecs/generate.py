"""Write the test vectors of one text codec version: ``python tests/vectors/codecs/generate.py CODEC``.

Run once, when a model version is released; the vectors of released versions are never regenerated.
CI decodes every vector file (tests/test_codec_vectors.py) so every version stays decodable forever.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wire.codec import PRESET_TABLES, TEXT_MODEL_SETS, encode_model_text, encode_text, preset_table

SAMPLES = {
    "my": ["ကျွန်တော် နေကောင်းပါတယ်။", "သူဌေးက လစာ ၃ လ မပေးသေးဘူး။ ကူညီပါ။", "OK ၁၂၃ hello 🐟"],
    "km": ["ខ្ញុំសុខសប្បាយ ថ្ងៃនេះសមុទ្រស្ងប់។", "សូមជួយយើងផង យើងខ្លាចណាស់។", "Phone ២៤ ម៉ោង"],
    "th": ["พี่สบายดี วันนี้ทะเลสงบ", "ไต๋ก๋งไม่จ่ายค่าแรงมา 4 เดือนแล้ว", "โทร 1300 ด่วน!"],
    "en": ["I am fine, the sea is calm today.", "They keep our passports.", "Ünïcödé ✓ 漢字 \x00"],
}


def presets(codec: int) -> None:
    version, digest = PRESET_TABLES[codec]
    table = preset_table(codec)
    vectors = [
        {"text": phrase, "encoded": encode_text(phrase, allowed=[codec]).hex()}
        for lang in table.languages
        for phrase in table.phrases(lang)
    ]
    out = {"codec": codec, "version": version, "sha256": digest, "chosen": vectors}
    path = Path(__file__).resolve().parent / f"presets-v{version}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    codec = int(sys.argv[1])
    if codec in PRESET_TABLES:
        presets(codec)
        return
    mset = TEXT_MODEL_SETS[codec]
    vectors = []
    for lang, texts in SAMPLES.items():
        for text in texts:
            body = encode_model_text(codec, lang, text)
            vectors.append({"lang": lang, "text": text, "encoded": (bytes([codec]) + body).hex()})
    chosen = [
        {"text": t, "encoded": encode_text(t, allowed=[codec]).hex()} for ts in SAMPLES.values() for t in ts
    ]
    out = {
        "codec": codec,
        "version": mset.version,
        "sha256": mset.sha256,
        "per_language": vectors,
        "chosen": chosen,
    }
    path = Path(__file__).resolve().parent / f"cm{mset.version}.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
