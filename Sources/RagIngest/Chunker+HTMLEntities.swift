/// Named character references of HTML: every entity of HTML 4 (Latin-1, symbols, Greek, specials), the
/// upper-case aliases HTML keeps from SGML, and the HTML5 names of ASCII punctuation and a few common symbols.
/// Names are case-sensitive. `lang`/`rang` follow HTML5 (U+27E8/U+27E9).
enum HTMLEntities {
    static let table: [String: UInt32] = {
        var table: [String: UInt32] = [
            "quot": 0x22, "amp": 0x26, "apos": 0x27, "lt": 0x3C, "gt": 0x3E,
            "QUOT": 0x22, "AMP": 0x26, "LT": 0x3C, "GT": 0x3E, "COPY": 0xA9, "REG": 0xAE,
            // HTML 4 specials.
            "OElig": 0x152, "oelig": 0x153, "Scaron": 0x160, "scaron": 0x161, "Yuml": 0x178, "circ": 0x2C6,
            "tilde": 0x2DC, "ensp": 0x2002, "emsp": 0x2003, "thinsp": 0x2009, "zwnj": 0x200C, "zwj": 0x200D,
            "lrm": 0x200E, "rlm": 0x200F, "ndash": 0x2013, "mdash": 0x2014, "lsquo": 0x2018, "rsquo": 0x2019,
            "sbquo": 0x201A, "ldquo": 0x201C, "rdquo": 0x201D, "bdquo": 0x201E, "dagger": 0x2020, "Dagger": 0x2021,
            "permil": 0x2030, "lsaquo": 0x2039, "rsaquo": 0x203A, "euro": 0x20AC,
            // HTML 4 symbols.
            "fnof": 0x192, "thetasym": 0x3D1, "upsih": 0x3D2, "piv": 0x3D6, "bull": 0x2022, "hellip": 0x2026,
            "prime": 0x2032, "Prime": 0x2033, "oline": 0x203E, "frasl": 0x2044, "weierp": 0x2118, "image": 0x2111,
            "real": 0x211C, "trade": 0x2122, "alefsym": 0x2135, "larr": 0x2190, "uarr": 0x2191, "rarr": 0x2192,
            "darr": 0x2193, "harr": 0x2194, "crarr": 0x21B5, "lArr": 0x21D0, "uArr": 0x21D1, "rArr": 0x21D2,
            "dArr": 0x21D3, "hArr": 0x21D4, "forall": 0x2200, "part": 0x2202, "exist": 0x2203, "empty": 0x2205,
            "nabla": 0x2207, "isin": 0x2208, "notin": 0x2209, "ni": 0x220B, "prod": 0x220F, "sum": 0x2211,
            "minus": 0x2212, "lowast": 0x2217, "radic": 0x221A, "prop": 0x221D, "infin": 0x221E, "ang": 0x2220,
            "and": 0x2227, "or": 0x2228, "cap": 0x2229, "cup": 0x222A, "int": 0x222B, "there4": 0x2234,
            "sim": 0x223C, "cong": 0x2245, "asymp": 0x2248, "ne": 0x2260, "equiv": 0x2261, "le": 0x2264,
            "ge": 0x2265, "sub": 0x2282, "sup": 0x2283, "nsub": 0x2284, "sube": 0x2286, "supe": 0x2287,
            "oplus": 0x2295, "otimes": 0x2297, "perp": 0x22A5, "sdot": 0x22C5, "lceil": 0x2308, "rceil": 0x2309,
            "lfloor": 0x230A, "rfloor": 0x230B, "lang": 0x27E8, "rang": 0x27E9, "loz": 0x25CA, "spades": 0x2660,
            "clubs": 0x2663, "hearts": 0x2665, "diams": 0x2666,
            // HTML5 names of ASCII characters and a few symbols common in documentation.
            "Tab": 0x09, "NewLine": 0x0A, "excl": 0x21, "num": 0x23, "dollar": 0x24, "percnt": 0x25, "lpar": 0x28,
            "rpar": 0x29, "ast": 0x2A, "plus": 0x2B, "comma": 0x2C, "period": 0x2E, "sol": 0x2F, "colon": 0x3A,
            "semi": 0x3B, "equals": 0x3D, "quest": 0x3F, "commat": 0x40, "lsqb": 0x5B, "lbrack": 0x5B,
            "bsol": 0x5C, "rsqb": 0x5D, "rbrack": 0x5D, "Hat": 0x5E, "lowbar": 0x5F, "grave": 0x60, "lcub": 0x7B,
            "lbrace": 0x7B, "verbar": 0x7C, "vert": 0x7C, "rcub": 0x7D, "rbrace": 0x7D,
            "check": 0x2713, "cross": 0x2717, "star": 0x2606, "starf": 0x2605, "bullet": 0x2022, "mldr": 0x2026,
            "hyphen": 0x2010, "dash": 0x2010, "lsquor": 0x201A, "rsquor": 0x2019, "ldquor": 0x201E,
            "rdquor": 0x201D, "rarrw": 0x219D, "map": 0x21A6, "leq": 0x2264, "geq": 0x2265, "neq": 0x2260,
            "div": 0xF7,
        ]
        // Latin-1 U+00A0...U+00FF, in code point order.
        let latin1 = [
            "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo",
            "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot",
            "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",
            "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
            "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash",
            "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde",
            "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc",
            "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
            "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
        ]
        for (offset, name) in latin1.enumerated() { table[name] = 0xA0 + UInt32(offset) }
        // Greek: capitals U+0391...U+03A9 (U+03A2 unassigned), small letters U+03B1...U+03C9.
        let greek = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta", "Iota", "Kappa", "Lambda",
                     "Mu", "Nu", "Xi", "Omicron", "Pi", "Rho", "", "Sigma", "Tau", "Upsilon", "Phi", "Chi", "Psi", "Omega"]
        for (offset, name) in greek.enumerated() where !name.isEmpty {
            table[name] = 0x391 + UInt32(offset)
            table[name.prefix(1).lowercased() + name.dropFirst()] = 0x3B1 + UInt32(offset)
        }
        table["sigmaf"] = 0x3C2
        return table
    }()

    /// Names that HTML also recognises without the closing `;` (the common subset of its legacy list).
    static let withoutSemicolon: Set<String> = ["amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "AMP", "LT", "GT", "QUOT"]

    /// Windows-1252 meanings of the numeric references `&#128;`...`&#159;`, as HTML decodes them (0 = keep).
    static let windows1252: [UInt32] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
        0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
    ]

    /// Decodes the character reference starting at `buf[start]` (an `&`): the scalar and the bytes it spans, or nil
    /// when it is not a reference (then the `&` is literal text). Numeric references that name no valid scalar
    /// (0, surrogates, beyond U+10FFFF) give U+FFFD.
    static func decode(_ buf: UnsafeBufferPointer<UInt8>, at start: Int, end: Int) -> (scalar: UInt32, length: Int)? {
        var i = start + 1
        guard i < end else { return nil }
        if buf[i] == 0x23 {  // #
            i += 1
            var hex = false
            if i < end, buf[i] | 0x20 == 0x78 { hex = true; i += 1 }  // x X
            let digitsStart = i
            var value: UInt32 = 0
            while i < end {
                let b = buf[i]
                var digit: UInt32
                if b >= 0x30 && b <= 0x39 {
                    digit = UInt32(b - 0x30)
                } else if hex, b | 0x20 >= 0x61, b | 0x20 <= 0x66 {
                    digit = UInt32(b | 0x20) - 0x61 + 10
                } else {
                    break
                }
                value = min(value * (hex ? 16 : 10) + digit, 0x110000)
                i += 1
            }
            guard i > digitsStart else { return nil }
            if i < end, buf[i] == 0x3B { i += 1 }  // ;
            if value >= 0x80 && value <= 0x9F, windows1252[Int(value - 0x80)] != 0 { value = windows1252[Int(value - 0x80)] }
            if value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF) { value = 0xFFFD }
            return (value, i - start)
        }
        let nameStart = i
        while i < end, i - nameStart < 32, isASCIIAlphanumeric(buf[i]) { i += 1 }
        guard i > nameStart else { return nil }
        let name = String(decoding: UnsafeBufferPointer(rebasing: buf[nameStart..<i]), as: UTF8.self)
        guard let value = table[name] else { return nil }
        if i < end, buf[i] == 0x3B { return (value, i + 1 - start) }
        // Without `;`: only the legacy names, and only as a whole word (not `&ampx`, not `&lt=` in a URL-ish run).
        if withoutSemicolon.contains(name), i == end || (!isASCIIAlphanumeric(buf[i]) && buf[i] != 0x3D) {
            return (value, i - start)
        }
        return nil
    }

    @inline(__always)
    static func isASCIIAlphanumeric(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A)
    }
}
