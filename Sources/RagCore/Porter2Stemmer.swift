/// The Snowball English stemmer ("Porter2"), written from the published algorithm
/// (snowballstem.org/algorithms/english/stemmer.html), matching Snowball 3.x:
/// exception list, Step 0 (apostrophes), 1a, 1b (with the succeed/proceed/exceed and
/// inning/outing/canning/herring/earring/evening and dying/lying/tying cases), 1c, 2–5,
/// R1/R2 with the gener/commun/arsen/past/univers/later/emerg/organ/inter prefixes.
///
/// Works on ASCII bytes; the marker for a consonant `y` is the upper-case byte `Y`.
public enum Porter2 {
    /// The stem of `word`, which should be lower case. Words with any character other than
    /// `a`–`z` and the apostrophe (upper case, digits, non-ASCII) are returned unchanged.
    public static func stem(_ word: String) -> String {
        var bytes = Array(word.utf8)
        for c in bytes where !((c >= 0x61 && c <= 0x7A) || c == apostrophe) { return word }
        stem(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Stems `w` in place. Precondition: every byte is `a`–`z` or `'`.
    static func stem(_ w: inout [UInt8]) {
        if w.count <= 6, applyException(&w) { return }
        if w.count < 3 { return }

        // Prelude: drop one leading apostrophe, mark consonant y's as Y.
        if w[0] == apostrophe { w.removeFirst() }
        var yFound = false
        if !w.isEmpty, w[0] == y {
            w[0] = Y
            yFound = true
        }
        if w.count > 1 {
            for i in 1..<w.count where w[i] == y && isV(w[i - 1]) {
                w[i] = Y
                yFound = true
            }
        }

        var s = State(p1: 0, p2: 0)
        s.markRegions(w)
        step1a(&w)
        s.step1b(&w)
        step1c(&w)
        s.step2(&w)
        s.step3(&w)
        s.step4(&w)
        s.step5(&w)

        if yFound {
            for i in w.indices where w[i] == Y { w[i] = y }
        }
    }

    // MARK: - Character classes

    private static let apostrophe: UInt8 = 0x27
    private static let y: UInt8 = 0x79
    private static let Y: UInt8 = 0x59

    /// a e i o u y
    @inline(__always) static func isV(_ c: UInt8) -> Bool {
        switch c {
        case 0x61, 0x65, 0x69, 0x6F, 0x75, 0x79: return true
        default: return false
        }
    }

    /// a e i o u y w x Y
    @inline(__always) private static func isVWXY(_ c: UInt8) -> Bool {
        switch c {
        case 0x61, 0x65, 0x69, 0x6F, 0x75, 0x79, 0x77, 0x78, 0x59: return true
        default: return false
        }
    }

    /// c d e g h k m n r t (letters that may precede a removable `li`)
    @inline(__always) private static func isValidLI(_ c: UInt8) -> Bool {
        switch c {
        case 0x63, 0x64, 0x65, 0x67, 0x68, 0x6B, 0x6D, 0x6E, 0x72, 0x74: return true
        default: return false
        }
    }

    // MARK: - Byte helpers

    @inline(__always) private static func ends(_ w: [UInt8], _ suffix: StaticString) -> Bool {
        let len = suffix.utf8CodeUnitCount
        let n = w.count
        guard n >= len else { return false }
        let p = suffix.utf8Start
        var i = 0
        while i < len {
            if w[n - len + i] != p[i] { return false }
            i += 1
        }
        return true
    }

    @inline(__always) private static func equals(_ w: [UInt8], _ count: Int, _ s: StaticString) -> Bool {
        guard count == s.utf8CodeUnitCount else { return false }
        let p = s.utf8Start
        for i in 0..<count where w[i] != p[i] { return false }
        return true
    }

    @inline(__always) private static func replaceSuffix(_ w: inout [UInt8], _ length: Int, with r: StaticString) {
        w.removeLast(length)
        w.append(contentsOf: UnsafeBufferPointer(start: r.utf8Start, count: r.utf8CodeUnitCount))
    }

    /// Whether `w[0..<end]` contains a vowel.
    @inline(__always) private static func hasVowel(_ w: [UInt8], before end: Int) -> Bool {
        var i = 0
        while i < end {
            if isV(w[i]) { return true }
            i += 1
        }
        return false
    }

    /// A short syllable ends at `end`: non-vowel (not w, x, Y), vowel, non-vowel;
    /// or a two-letter word vowel + non-vowel; or a word ending in "past".
    private static func shortSyllable(_ w: [UInt8], endingAt end: Int) -> Bool {
        if end >= 3, !isVWXY(w[end - 1]), isV(w[end - 2]), !isV(w[end - 3]) { return true }
        if end == 2, !isV(w[1]), isV(w[0]) { return true }
        if end >= 4, w[end - 4] == 0x70, w[end - 3] == 0x61, w[end - 2] == 0x73, w[end - 1] == 0x74 { return true }
        return false
    }

    // MARK: - Exceptions

    private struct Exception: Sendable {
        let word: StaticString
        let stem: StaticString?
    }

    private static let exceptions: [Exception] = [
        Exception(word: "skis", stem: "ski"), Exception(word: "skies", stem: "sky"),
        Exception(word: "idly", stem: "idl"), Exception(word: "gently", stem: "gentl"),
        Exception(word: "ugly", stem: "ugli"), Exception(word: "early", stem: "earli"),
        Exception(word: "only", stem: "onli"), Exception(word: "singly", stem: "singl"),
        Exception(word: "sky", stem: nil), Exception(word: "news", stem: nil),
        Exception(word: "howe", stem: nil), Exception(word: "atlas", stem: nil),
        Exception(word: "cosmos", stem: nil), Exception(word: "bias", stem: nil),
        Exception(word: "andes", stem: nil),
    ]

    /// Handles the whole-word exceptions; returns true if `w` was one (and is now final).
    private static func applyException(_ w: inout [UInt8]) -> Bool {
        let n = w.count
        guard n >= 3 else { return false }
        for e in exceptions where equals(w, n, e.word) {
            if let s = e.stem {
                w.removeAll(keepingCapacity: true)
                w.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
            }
            return true
        }
        return false
    }

    // MARK: - Steps

    /// Step 0 (apostrophe suffixes) and Step 1a (plurals).
    private static func step1a(_ w: inout [UInt8]) {
        if ends(w, "'s'") {
            w.removeLast(3)
        } else if ends(w, "'s") {
            w.removeLast(2)
        } else if ends(w, "'") {
            w.removeLast(1)
        }
        let n = w.count
        guard n > 0, w[n - 1] == 0x73 || w[n - 1] == 0x64 else { return }
        if ends(w, "sses") {
            w.removeLast(2)
        } else if ends(w, "ied") || ends(w, "ies") {
            replaceSuffix(&w, 3, with: n - 3 >= 2 ? "i" : "ie")
        } else if ends(w, "ss") || ends(w, "us") {
            return
        } else if w[n - 1] == 0x73 {
            // Delete the s if a vowel occurs before the letter preceding it.
            if n >= 2, hasVowel(w, before: n - 2) { w.removeLast() }
        }
    }

    /// Step 1c: y/Y after a non-vowel that is not the first letter becomes i.
    private static func step1c(_ w: inout [UInt8]) {
        let n = w.count
        guard n >= 3, w[n - 1] == y || w[n - 1] == Y, !isV(w[n - 2]) else { return }
        w[n - 1] = 0x69
    }

    private struct Rule: Sendable {
        let suffix: StaticString
        let replacement: StaticString
        /// 0: plain replacement; 1: Step 2 `ogi` (needs a preceding l); 2: Step 2 `li` (needs a valid
        /// li-ending); 3: Step 3 `ative` (needs R2); 4: Step 4 `ion` (needs a preceding s or t).
        let kind: UInt8
        init(_ suffix: StaticString, _ replacement: StaticString, _ kind: UInt8 = 0) {
            self.suffix = suffix
            self.replacement = replacement
            self.kind = kind
        }
    }

    // Longest suffixes first so that the first match is the longest one.
    private static let step2Rules: [Rule] = [
        Rule("ational", "ate"), Rule("ization", "ize"), Rule("iveness", "ive"),
        Rule("fulness", "ful"), Rule("ousness", "ous"),
        Rule("tional", "tion"), Rule("biliti", "ble"), Rule("lessli", "less"),
        Rule("ation", "ate"), Rule("alism", "al"), Rule("aliti", "al"), Rule("iviti", "ive"),
        Rule("ogist", "og"), Rule("fulli", "ful"), Rule("ousli", "ous"), Rule("entli", "ent"),
        Rule("enci", "ence"), Rule("anci", "ance"), Rule("abli", "able"), Rule("alli", "al"),
        Rule("izer", "ize"), Rule("ator", "ate"),
        Rule("bli", "ble"), Rule("ogi", "og", 1),
        Rule("li", "", 2),
    ]

    private static let step3Rules: [Rule] = [
        Rule("ational", "ate"), Rule("tional", "tion"),
        Rule("alize", "al"), Rule("icate", "ic"), Rule("iciti", "ic"), Rule("ative", "", 3),
        Rule("ical", "ic"), Rule("ness", ""), Rule("ful", ""),
    ]

    private static let step4Rules: [Rule] = [
        Rule("ement", ""),
        Rule("ment", ""), Rule("ance", ""), Rule("ence", ""), Rule("able", ""), Rule("ible", ""),
        Rule("ent", ""), Rule("ate", ""), Rule("ive", ""), Rule("ize", ""), Rule("iti", ""),
        Rule("ism", ""), Rule("ion", "", 4), Rule("ous", ""), Rule("ant", ""),
        Rule("ic", ""), Rule("al", ""), Rule("er", ""),
    ]

    @inline(__always) private static func longestMatch(_ w: [UInt8], _ rules: [Rule]) -> Rule? {
        guard let last = w.last else { return nil }
        for r in rules {
            let len = r.suffix.utf8CodeUnitCount
            if r.suffix.utf8Start[len - 1] == last, ends(w, r.suffix) { return r }
        }
        return nil
    }

    /// The regions R1 and R2 (start offsets) of the word being stemmed.
    private struct State {
        var p1: Int
        var p2: Int

        private static let r1Prefixes: [StaticString] = [
            "arsen", "commun", "emerg", "gener", "inter", "later", "organ", "past", "univers",
        ]

        /// Offset just after the first non-vowel that follows a vowel, searching from `start`.
        private static func regionStart(_ w: [UInt8], from start: Int) -> Int? {
            var i = start
            let n = w.count
            while i < n, !isV(w[i]) { i += 1 }
            while i < n, isV(w[i]) { i += 1 }
            return i < n ? i + 1 : nil
        }

        mutating func markRegions(_ w: [UInt8]) {
            let n = w.count
            p1 = n
            p2 = n
            var prefixLength: Int?
            for p in State.r1Prefixes {
                let len = p.utf8CodeUnitCount
                if n >= len, equals(w, len, p) {
                    prefixLength = len
                    break
                }
            }
            if let len = prefixLength {
                p1 = len
            } else if let r = State.regionStart(w, from: 0) {
                p1 = r
            } else {
                return
            }
            if let r = State.regionStart(w, from: p1) { p2 = r }
        }

        mutating func step1b(_ w: inout [UInt8]) {
            let n = w.count
            guard n >= 2 else { return }
            let last = w[n - 1]
            guard last == 0x64 || last == 0x67 || last == 0x79 else { return }  // d, g, y
            if ends(w, "eedly") || (!ends(w, "edly") && ends(w, "eed")) {
                let len = ends(w, "eedly") ? 5 : 3
                let start = n - len
                guard start >= p1 else { return }
                if equals(w, start, "succ") || equals(w, start, "proc") || equals(w, start, "exc") { return }
                replaceSuffix(&w, len, with: "ee")
                return
            }
            let len: Int
            if ends(w, "ingly") {
                len = 5
            } else if ends(w, "edly") {
                len = 4
            } else if ends(w, "ing") {
                len = 3
                let start = n - 3
                // "dying" -> "die": consonant + y + ing makes a whole word.
                if start == 2, w[1] == y, !isV(w[0]) {
                    replaceSuffix(&w, 4, with: "ie")
                    return
                }
                if equals(w, start, "even") || equals(w, start, "cann") || equals(w, start, "inn")
                    || equals(w, start, "earr") || equals(w, start, "herr") || equals(w, start, "out")
                {
                    return
                }
            } else if ends(w, "ed") {
                len = 2
            } else {
                return
            }
            let start = n - len
            guard hasVowel(w, before: start) else { return }
            w.removeLast(len)
            let m = start
            if m >= 2 {
                let a = w[m - 2], b = w[m - 1]
                // at, bl, iz: add e.
                if (a == 0x61 && b == 0x74) || (a == 0x62 && b == 0x6C) || (a == 0x69 && b == 0x7A) {
                    w.append(0x65)
                    return
                }
                // Double consonant: drop one, unless the word is just a/e/o + the double.
                if a == b {
                    switch b {
                    case 0x62, 0x64, 0x66, 0x67, 0x6D, 0x6E, 0x70, 0x72, 0x74:  // b d f g m n p r t
                        if m == 3, w[0] == 0x61 || w[0] == 0x65 || w[0] == 0x6F { return }
                        w.removeLast()
                        return
                    default:
                        break
                    }
                }
            }
            // A short word (R1 empty and a short syllable at the end): add e.
            if m == p1, shortSyllable(w, endingAt: m) { w.append(0x65) }
        }

        mutating func step2(_ w: inout [UInt8]) {
            guard let r = longestMatch(w, Porter2.step2Rules) else { return }
            let len = r.suffix.utf8CodeUnitCount
            let start = w.count - len
            guard start >= p1 else { return }
            switch r.kind {
            case 1:
                guard start >= 1, w[start - 1] == 0x6C else { return }
            case 2:
                guard start >= 1, isValidLI(w[start - 1]) else { return }
            default:
                break
            }
            replaceSuffix(&w, len, with: r.replacement)
        }

        mutating func step3(_ w: inout [UInt8]) {
            guard let r = longestMatch(w, Porter2.step3Rules) else { return }
            let len = r.suffix.utf8CodeUnitCount
            let start = w.count - len
            guard start >= p1 else { return }
            if r.kind == 3, start < p2 { return }
            replaceSuffix(&w, len, with: r.replacement)
        }

        mutating func step4(_ w: inout [UInt8]) {
            guard let r = longestMatch(w, Porter2.step4Rules) else { return }
            let len = r.suffix.utf8CodeUnitCount
            let start = w.count - len
            guard start >= p2 else { return }
            if r.kind == 4 {
                guard start >= 1, w[start - 1] == 0x73 || w[start - 1] == 0x74 else { return }
            }
            w.removeLast(len)
        }

        mutating func step5(_ w: inout [UInt8]) {
            let n = w.count
            guard n >= 1 else { return }
            let start = n - 1
            if w[start] == 0x65 {  // e
                if start >= p2 || (start >= p1 && !shortSyllable(w, endingAt: start)) { w.removeLast() }
            } else if w[start] == 0x6C {  // l
                if start >= p2, start >= 1, w[start - 1] == 0x6C { w.removeLast() }
            }
        }
    }
}
