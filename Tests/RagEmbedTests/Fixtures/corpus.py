"""Deterministic test strings for the MiniLM tokenizer and encoder fixtures (used by make_fixtures.py).

`tokenizer_strings()` returns well over 1,000 varied strings: scripts and Unicode oddities, CJK, code,
URLs and paths, numbers and dates, punctuation runs, very long words, whitespace and control characters,
literal special tokens, empty input, real sentences and paragraphs from the Python documentation, and random
mixtures of all of these. `doc_lines()` gives the real sentences. Everything is drawn from
`random.Random(seed)` over sorted file lists, so a run on the same machine gives the same strings.
"""
import glob
import json
import os
import random
import string

SEED = 20261127
DOC_ROOTS = ["/usr/share/doc/python3.11/html/_sources"]


# ------------------------------------------------------------------------------------------ real text
def _doc_files():
    for root in DOC_ROOTS:
        files = sorted(glob.glob(os.path.join(root, "**", "*.rst.txt"), recursive=True))
        if files:
            return files
    # Any text under /usr/share/doc (changelogs are gzipped; READMEs and copyright files are not).
    files = []
    for path in sorted(glob.glob("/usr/share/doc/**/*", recursive=True)):
        if os.path.isfile(path) and not path.endswith(".gz") and os.path.getsize(path) < 2_000_000:
            files.append(path)
    return files


def doc_lines(min_chars=20):
    """Every non-blank line of the documentation files (stripped), in file order."""
    lines = []
    for path in _doc_files():
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if len(line) >= min_chars and not set(line) <= set("=-~^*#+`'\"._:"):
                        lines.append(line)
        except (UnicodeDecodeError, OSError):
            continue
    return lines


def doc_paragraphs():
    """Blank-line separated paragraphs of the documentation files, newlines kept."""
    paragraphs = []
    for path in _doc_files():
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        for block in text.split("\n\n"):
            block = block.strip("\n")
            if len(block) >= 40:
                paragraphs.append(block)
    return paragraphs


# ------------------------------------------------------------------------------------------ fragments
LATIN = [
    "Café déjà vu — naïve façade", "Straße, Größe, Übermaß, Ärger", "El niño comió piñata en España",
    "São Paulo, Coração, ação", "Zażółć gęślą jaźń", "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Tiếng Việt có dấu: Nguyễn, Trần, Phạm", "İstanbul'da ılık bir gün, Iğdır", "Þórður og Ægir á Íslandi",
    "Ørsted, Ålesund, Æbleskiver", "Crème brûlée à la française", "Ångström, Øresund, Œuvre, ŒUF",
    "Łódź, Kraków, Gdańsk", "Señor Muñoz y doña Ibáñez", "Dvořák, Janáček, Smetana", "Ĉu vi parolas Esperanton?",
    "Hämäläinen, Mäkinen, Äänekoski", "Şişli, Çağlayan, Ğ", "Ṭhe ḍot ḅelow ẹverywhere", "ǅemal ǈubica ǋegoš",
]
GREEK = ["Ελληνικά: Καλημέρα κόσμε", "ΟΔΟΣ Σίσυφος ὁδός ἀρχή", "Γειά σου, τι κάνεις;", "Ἀθῆναι, Ὅμηρος, ᾠδή",
         "λόγος μῦθος ψυχή", "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ", "αβγδεζηθικλμνξοπρστυφχψως"]
CYRILLIC = ["Русский текст: Привет, мир!", "Съешь же ещё этих мягких французских булок", "Українська: їжак, ґанок, є",
            "Български език", "Српски: Ђорђе, Љубав, Њива, Џак", "ЁЛКА ёлка Йод", "Қазақ тілі: әдебиет, ғылым"]
ARABIC = ["العربية: مرحبا بالعالم", "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ", "كتب الطالب الدرس ١٢٣٤ ٥٦٧",
          "فارسی: سلام دنیا، گربه، پژوهش", "اردو: خوش آمدید", "ﷲ ﷺ ﻻ ﻷ"]
HEBREW = ["עברית: שלום עולם", "בְּרֵאשִׁית בָּרָא אֱלֹהִים", "ירושלים, תל־אביב", "ﬠﬡﬢ ﬣ פּ"]
DEVANAGARI = ["हिन्दी: नमस्ते दुनिया", "संस्कृतम् भाषा", "मराठी भाषा क्षेत्र", "क़ ख़ ग़ ज़ ड़ ढ़ फ़", "०१२३४५६७८९",
              "বাংলা ভাষা", "தமிழ் மொழி", "ਪੰਜਾਬੀ", "ગુજરાતી", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "සිංහල"]
THAI = ["ภาษาไทย: สวัสดีชาวโลก", "กรุงเทพมหานคร อมรรัตนโกสินทร์", "ພາສາລາວ", "ភាសាខ្មែរ", "မြန်မာဘာသာ",
        "ཀུན་མཁྱེན།", "ქართული ენა", "Հայերեն", "አማርኛ", "ᏣᎳᎩ", "ᐃᓄᒃᑎᑐᑦ", "ꦧꦱꦗꦮ"]
CJK = ["中文分词测试", "我爱北京天安门。", "「日本語」のテキスト、カタカナとひらがな。", "한국어 텍스트와 조사를 처리합니다",
       "漢字とかなの混在 mixed with English", "繁體中文：臺灣、香港", "𠀀𪚥𫝀𬺰 rare CJK extensions",
       "０１２３ＡＢＣ　全角スペース", "ｶﾀｶﾅ ﾊﾝｶｸ", "㈱ ㍻ ㎏ ㎡ ℃", "〇一二三四五六七八九十", "㐀㐁㐂 extension A",
       "豈更車賈 compatibility ideographs", "⺀⺁ radicals ⼀⼁", "ㄅㄆㄇ bopomofo", "ꀀꀁ yi"]
EMOJI = ["emoji 😀👍🏽 and 🫠 face", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag 🇫🇷🇯🇵🇺🇸", "1️⃣ #️⃣ *️⃣ keycaps", "❤️ ❤ ☺️ ☺",
         "🧑🏿‍💻 technologist", "🐍🦀🐹 languages", "🥲🫶🫨🪿 newer emoji", "✅❌⚠️🚀🔥", "👁️‍🗨️ eye", "🤷‍♀️🤷🏻‍♂️"]
COMBINING = ["e\u0301 combining vs \u00e9 precomposed", "a\u0300\u0301\u0302\u0303\u0304 stacked", "Z\u0351\u036b\u0343a\u0352lg\u035co",
             "n\u0303o\u0308", "\u0301 leading mark", "x\u20dd enclosed", "1\u20e3 keycap", "ก\u0e31\u0e49 thai marks",
             "Å\u030a double ring", "ᄀ\u1161\u11a8 jamo", "q\u0307\u0323 dots", "\u0915\u094d\u0937 conjunct"]
ZERO_WIDTH = ["zero\u200bwidth space", "non\u200cjoiner", "zero\u200dwidth joiner", "word\u2060joiner", "\ufeffbom at start",
              "soft\u00adhyphen", "left\u200eto\u200fright marks", "\u202aembedding\u202c", "\u2066isolate\u2069",
              "in\u180bvisible", "\u034fgrapheme joiner", "tag\U000e0041\U000e0042 chars", "inter\u2062linear\u2063sep"]
FULLWIDTH = ["ＦＵＬＬＷＩＤＴＨ ｆｏｒｍｓ", "（括弧）［角］｛波｝", "！？，．：；", "＄１００・５０", "ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｃｏｍ",
             "＠ｕｓｅｒ ＃ｔａｇ", "～〜ー－", "￥￡￠", "ﾟﾞ ｰ"]
SCRIPTS = LATIN + GREEK + CYRILLIC + ARABIC + HEBREW + DEVANAGARI + THAI + CJK + EMOJI + COMBINING + ZERO_WIDTH + FULLWIDTH

CODE = [
    "Call sd_notify() after bind()", "sd_notify(0, \"READY=1\\nSTATUS=indexing\")", "sd_listen_fds(0) > 0 ? SD_LISTEN_FDS_START : -1",
    "fs.inotify.max_user_watches=524288", "getHTTPResponseCode", "XMLHttpRequest", "parseJSONToDictionary",
    "snake_case_name __init__ self.__dict__", "SCREAMING_SNAKE_CASE_CONSTANT", "kebab-case-identifier", "camelCaseIdentifier2Go",
    "std::vector<std::string>::iterator it", "fn main() -> Result<(), Box<dyn Error>> {", "let x: [Int32] = try #require(y)",
    "public func embed(_ texts: [String]) throws -> [[Float]]", "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "if (a && b || !c) { x += 1; } else { y <<= 2; }", "#include <stdio.h>\nint main(void) { return 0; }",
    "def __repr__(self): return f\"<{type(self).__name__} {self.id!r}>\"", "lambda x: x ** 2 if x % 2 == 0 else -x",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@\\w+\\.com$", "@objc dynamic var isEnabled: Bool", "@Test func miniLM() async throws",
    "$ sudo systemctl enable --now ragd.socket", "git -c user.name=x commit -m 'fix: off-by-one'", "ls -la | grep -v '^d' | wc -l",
    "curl -fsSL -H 'Accept: application/json' \"$URL\" | jq '.items[] | .name'", "for f in *.md; do echo \"$f\"; done",
    "export PATH=\"$HOME/.local/bin:$PATH\"", "make -j$(nproc) CFLAGS='-O2 -march=x86-64-v3'", "docker run --rm -v $(pwd):/src -p 8080:80 nginx:1.25",
    "kill -- -$(cat job/pid) 2>/dev/null || true", "apt-get install -y liblmdb-dev libopenblas-dev",
    "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/json/decoder.py\", line 355, in raw_decode\n    raise JSONDecodeError(\"Expecting value\", s, err.value) from None\njson.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    "Fatal error: Unexpectedly found nil while unwrapping an Optional value: file ragd/Daemon.swift, line 42",
    "Exception in thread \"main\" java.lang.NullPointerException\n\tat com.example.App.main(App.java:14)\n\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
    "thread 'main' panicked at 'index out of bounds: the len is 3 but the index is 7', src/main.rs:4:5",
    "Segmentation fault (core dumped) at 0x00007ffd5e8c1a40 in __memcpy_avx_unaligned_erms ()",
    "{\"id\":1,\"op\":\"search\",\"query\":\"signing keys\",\"k\":3}", "[{\"a\": null, \"b\": [true, false, 1e-3]}]",
    "<html><body class=\"x\">Hi &amp; bye</body></html>", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a b='c'/>",
    "key = \"value\" # TOML comment\n[section.sub]\narray = [1, 2, 3]", "---\ntitle: Front matter\ntags: [a, b]\n---",
    "x86_64-unknown-linux-gnu", "C++ & C# -> x86_64; F# and Objective-C++", "0x7fff_ffff & ~mask >> 3", "a->b.c[d]::e",
    "__attribute__((always_inline)) static inline", "print(\"Hello, World!\")", "console.log(`${a} + ${b}`)",
]

URLS = [
    "https://example.com/path?query=1&b=2#frag", "http://localhost:8080/api/v1/items/42?fields=name,id",
    "ftp://user:pass@ftp.example.org/pub/file.tar.gz", "https://[2001:db8::1]:443/index.html", "file:///etc/ragd/ragd.toml",
    "mailto:user@example.org?subject=Hello%20World", "user.name+tag@sub.example.co.uk", "https://ja.wikipedia.org/wiki/日本語",
    "https://example.com/%E6%97%A5%E6%9C%AC?q=a%20b", "/usr/share/doc/python3.11/html/_sources/library/os.rst.txt",
    "$HOME/.config/ragd.toml ~/bin ../../up/two", "C:\\Program Files\\ragd\\bin\\ragd.exe", "\\\\server\\share\\folder\\file.txt",
    "/run/ragd/ragd.sock", "./scripts/fetch-model.sh models/all-MiniLM-L6-v2", "git@github.com:owner/repo.git",
    "s3://bucket-name/prefix/key.json", "urn:isbn:0451450523", "data:text/plain;base64,SGVsbG8sIFdvcmxkIQ==",
    "192.168.0.1:5432 10.0.0.0/8 ::1 fe80::1%eth0", "www.example.com/index.php?id=1' OR '1'='1",
]

NUMBERS = [
    "1,234.56 3.14e-10 0x1F 0b1010 0o755", "2026-11-27T06:40:00Z", "27/11/2026 11-27-2026 2026年11月27日", "12:34:56.789 +01:00",
    "v1.2.3-rc.1+build.5", "Python 3.11.2", "−42 ±3 ½ ¾ ⅓ ² ³ ¹", "€1.234,56 £99.99 ¥1000 $5 ₹250 ₿0.001",
    "+1 (555) 123-4567", "99.9% 1e6 6.02214076e23", "1st 2nd 3rd 4th 21st", "Ⅻ ⅻ Ⅳ roman", "٣.١٤ ۱۲۳ ๑๒๓ ໑໒", "①②③ ⑴ ⒈",
    "𝟎𝟏𝟐 𝐀𝐁𝐂 math alphanumerics", "1_000_000 3'000'000", "NaN inf -inf -0.0", "10^9 2**32 4294967296 18446744073709551615",
]

SPECIALS = [
    "[CLS] literal [SEP] tokens [MASK] [unk] [cls]", "[CLS]", "[SEP]", "[PAD][PAD]", "[UNK]x[UNK]", "x[MASK]y", "[MASK]ed [SEP]arated",
    "[CLS][SEP][MASK][UNK][PAD]", "[ CLS ]", "[[SEP]]", "[SEP", "SEP]", "[Cls]", "[cls]", "＜[SEP]＞", "中[SEP]文",
]

WHITESPACE = [
    "", " ", "\n", "\t", "\r\n", "   \t\n  ", "tab\tnew\nline\r\nreturn", "\u000bvertical\u000cform feed",
    "control\u0001\u0007chars\u007f here", "nul\u0000byte", "\u0085nel\u0085", "line\u2028separator\u2029paragraph",
    "\u3000ideographic\u00a0nbsp\u2003emspace\u2009thin\u202fnarrow", "\u1680ogham\u180emongolian", "escape\u001b[31mred\u001b[0m",
    "c1\u0080\u0090\u009fcontrols", "replacement \ufffd char", "unassigned \u0378 private \ue000 end", "\U000f0000 plane 15 private",
    "noncharacters \ufdd0 \ufffe \uffff", "bell\u0007", "\u00a0", "\u200b", "\ufeff", "\u0000", "\u3000\u3000",
]


# ------------------------------------------------------------------------------------------ generators
def _random_scalar(rng, lo, hi):
    while True:
        c = rng.randint(lo, hi)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


RANGES = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
    (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF),
    (0x2100, 0x214F), (0x2190, 0x21FF), (0x2200, 0x22FF), (0x2500, 0x257F), (0x3000, 0x303F), (0x3040, 0x30FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF), (0xF900, 0xFAFF), (0xFB00, 0xFB4F),
    (0xFE00, 0xFE0F), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF),
    (0x0, 0x1F), (0x7F, 0x9F),
]


def random_unicode(rng, n):
    """n scalars from assorted blocks (spaces between some), no surrogates."""
    out = []
    for _ in range(n):
        if rng.random() < 0.15:
            out.append(" ")
        else:
            lo, hi = rng.choice(RANGES)
            out.append(_random_scalar(rng, lo, hi))
    return "".join(out)


def random_identifier(rng):
    words = ["user", "max", "watch", "index", "chunk", "embed", "vector", "socket", "http", "json", "parse", "file", "id",
             "token", "model", "bert", "layer", "norm", "query", "key", "value", "lmdb", "txn", "read", "write", "fd", "sd"]
    parts = [rng.choice(words) for _ in range(rng.randint(2, 5))]
    style = rng.randrange(6)
    if style == 0:
        s = "_".join(parts)
    elif style == 1:
        s = parts[0] + "".join(p.capitalize() for p in parts[1:])
    elif style == 2:
        s = "".join(p.capitalize() for p in parts)
    elif style == 3:
        s = "_".join(parts).upper()
    elif style == 4:
        s = ".".join(parts) + "()"
    else:
        s = "-".join(parts)
    if rng.random() < 0.3:
        s += str(rng.randint(0, 999))
    if rng.random() < 0.2:
        s = "__" + s + "__"
    return s


def random_json(rng):
    def value(depth):
        k = rng.randrange(7 if depth < 3 else 4)
        if k == 0:
            return rng.randint(-10**6, 10**6)
        if k == 1:
            return round(rng.uniform(-1e3, 1e3), rng.randint(0, 6))
        if k == 2:
            return rng.choice([True, False, None])
        if k == 3:
            return random_identifier(rng)
        if k in (4, 5):
            return {random_identifier(rng): value(depth + 1) for _ in range(rng.randint(1, 4))}
        return [value(depth + 1) for _ in range(rng.randint(0, 4))]
    return json.dumps(value(0), ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, None, 2]))


def random_url(rng):
    scheme = rng.choice(["http", "https", "ftp", "ssh", "file"])
    host = ".".join(rng.choice(["www", "api", "docs", "example", "ragd", "cdn", "xn--nxasmq6b", "localhost"]) for _ in range(rng.randint(1, 3)))
    tld = rng.choice([".com", ".org", ".io", ".co.uk", ".de", ""])
    path = "/".join(random_identifier(rng) for _ in range(rng.randint(0, 4)))
    url = f"{scheme}://{host}{tld}"
    if rng.random() < 0.3:
        url += f":{rng.randint(1, 65535)}"
    url += "/" + path
    if rng.random() < 0.5:
        url += "?" + "&".join(f"{random_identifier(rng)}={rng.randint(0, 99)}" for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.3:
        url += "#" + random_identifier(rng)
    return url


def random_path(rng):
    sep = rng.choice(["/", "/", "\\"])
    parts = [rng.choice(["usr", "share", "doc", "etc", "var", "lib", "home", "root", "src", "Tests", "RagEmbed", ".config",
                         "..", ".", "node_modules", "site-packages", "Program Files"]) for _ in range(rng.randint(1, 6))]
    name = random_identifier(rng) + rng.choice([".md", ".rst.txt", ".swift", ".py", ".tar.gz", ".json", "", ".so.1.2"])
    lead = rng.choice(["/", "~/", "./", "C:\\", ""])
    return lead + sep.join(parts + [name])


def random_number(rng):
    k = rng.randrange(10)
    if k == 0:
        return str(rng.randint(-10**12, 10**12))
    if k == 1:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if k == 2:
        return f"{rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30):e}"
    if k == 3:
        return hex(rng.randint(0, 2**64))
    if k == 4:
        return f"{rng.randint(1970, 2099):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if k == 5:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}"
    if k == 6:
        return f"v{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}"
    if k == 7:
        return f"{rng.randint(0, 100)}%"
    if k == 8:
        return f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    return f"{rng.randint(1, 31)}/{rng.randint(1, 12)}/{rng.randint(0, 99):02d}"


PUNCT = string.punctuation + "¡¿«»‹›“”‘’„‚—–‐‑‒―…·•‧†‡‰′″‴※‼⁇⁈⁉、。〃〈〉《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟﹏！？・¦§¶©®™°"


def random_punctuation(rng):
    n = rng.randint(1, 40)
    s = "".join(rng.choice(PUNCT) for _ in range(n))
    if rng.random() < 0.5:
        s = rng.choice(["wait", "what", "ok", "ja", "中"]) + s + rng.choice(["", "end", " x"])
    return s


def long_words(rng):
    out = []
    for n in (99, 100, 101, 102, 120, 150, 200, 300):
        out.append("".join(rng.choice(string.ascii_lowercase) for _ in range(n)))
    out += ["a" * 100, "a" * 101, "A" * 100 + " ok", "é" * 100, "é" * 101, "e\u0301" * 100, "İ" * 50, "İ" * 51,
            "\u00df" * 101, "ﬁ" * 60, "中" * 120, "😀" * 101, "ab" * 60, "x" * 100 + "-" + "y" * 100,
            "supercalifragilisticexpialidocious" * 3, "Pneumonoultramicroscopicsilicovolcanoconiosis",
            "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
            "http://example.com/" + "a" * 120, "0123456789" * 11, "_" * 101, "a_" * 55]
    for _ in range(20):
        n = rng.randint(90, 140)
        alphabet = rng.choice([string.ascii_letters, string.ascii_lowercase + string.digits, "abcdéèêëàâäçñöü",
                               "абвгдежзийклмнопрстуфхцчшщъыьэюя", "αβγδεζηθικλμνξοπρστυφχψω"])
        out.append("".join(rng.choice(alphabet) for _ in range(n)))
    return out


def whitespace_mix(rng):
    pool = [" ", "\t", "\n", "\r", "\u000b", "\u000c", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2005", "\u200a", "\u2028",
            "\u2029", "\u202f", "\u205f", "\u3000", "\u0000", "\u0001", "\u001f", "\u007f", "\u0080", "\u009f", "\u200b",
            "\u200d", "\ufeff", "\u00ad"]
    parts = []
    for _ in range(rng.randint(1, 12)):
        parts.append("".join(rng.choice(pool) for _ in range(rng.randint(0, 4))))
        if rng.random() < 0.6:
            parts.append(rng.choice(["word", "Ab", "中", "é", "x1", "-", "ok."]))
    return "".join(parts)


def long_texts(rng, paragraphs):
    """Texts past 256 tokens, to test truncation."""
    out = ["word " * 300, "hello world " * 200, "中" * 400, "[SEP] " * 300, "a-" * 300, "😀 " * 300,
           "déjà " * 260, "x" * 5000, ". " * 600]
    long_paragraphs = [p for p in paragraphs if len(p) > 1500]
    for p in rng.sample(long_paragraphs, min(25, len(long_paragraphs))):
        out.append(p)
    for _ in range(10):
        out.append(" ".join(rng.sample(paragraphs, 4)))
    return out


def tokenizer_strings(extra_cases=()):
    """The tokenizer fixture's strings: fixed lists, generated ones and documentation text, each once."""
    rng = random.Random(SEED)
    lines = doc_lines()
    paragraphs = doc_paragraphs()
    out = list(extra_cases)
    out += SCRIPTS + CODE + URLS + NUMBERS + SPECIALS + WHITESPACE
    out += [random_unicode(rng, rng.randint(1, 40)) for _ in range(120)]
    out += [random_identifier(rng) for _ in range(60)]
    out += [random_json(rng) for _ in range(30)]
    out += [random_url(rng) for _ in range(40)]
    out += [random_path(rng) for _ in range(40)]
    out += [" ".join(random_number(rng) for _ in range(rng.randint(1, 5))) for _ in range(50)]
    out += [random_punctuation(rng) for _ in range(50)]
    out += long_words(rng)
    out += [whitespace_mix(rng) for _ in range(40)]
    out += long_texts(rng, paragraphs)
    out += rng.sample(lines, 400)
    out += rng.sample(paragraphs, 60)
    # Mixtures: a few fragments of any kind, joined by a space, nothing or a newline.
    pools = [SCRIPTS, CODE, URLS, NUMBERS, SPECIALS, WHITESPACE, lines]
    for _ in range(150):
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(2, 5))]
        out.append(rng.choice([" ", "", "\n", " — "]).join(parts))
    # Lower-, upper- and title-cased variants of some real lines.
    for line in rng.sample(lines, 30):
        out.append(rng.choice([str.upper, str.title, str.swapcase])(line))
    seen, unique = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


# ------------------------------------------------------------------------------------------ encoder texts
def encoder_texts(token_count, count=230, truncated=25):
    """`count` texts whose token counts ([CLS] and [SEP] included, `token_count(text)`) spread over 2…256,
    then `truncated` texts past 256 tokens. Sources: documentation prose, code and markup from the same
    files, and the multilingual, emoji and code fragments above."""
    rng = random.Random(SEED + 1)
    paragraphs = doc_paragraphs()
    lines = doc_lines()
    fragments = SCRIPTS + CODE + URLS + NUMBERS + SPECIALS

    def source():
        k = rng.random()
        if k < 0.6:
            return " ".join(rng.sample(paragraphs, 6))
        if k < 0.8:
            return "\n".join(rng.sample(lines, 20))
        return " ".join(rng.choice(fragments) for _ in range(60))

    def cut(text, target):
        """The longest prefix of whole words with at most `target` tokens (binary search over words)."""
        words = text.split(" ")
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if token_count(" ".join(words[:mid])) <= target:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    texts = ["", "x", "the", "Hello!", "中", "😀", "[SEP]", "sd_notify()"]
    targets = [2 + round(i * 254 / (count - len(texts) - 1)) for i in range(count - len(texts))]
    for target in targets:
        text = ""
        for _ in range(20):  # a source whose first word alone already exceeds the target is retried
            text = cut(source(), target)
            if text and token_count(text) >= max(2, target - 8):
                break
        texts.append(text)
    while len(texts) < count + truncated:
        text = " ".join(rng.sample(paragraphs, 8))
        if token_count(text) > 270:
            texts.append(text)
    return texts
