/// Tiny JSON helpers for the few places that write or read JSON by hand (role permissions, the
/// export, piamd's decision log), avoiding Foundation in hot loops.
public enum JSONText {
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `s` as a JSON string literal (quotes included).
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(0x6E)
            case 0x0D: out.append(0x5C); out.append(0x72)
            case 0x09: out.append(0x5C); out.append(0x74)
            case 0x08: out.append(0x5C); out.append(0x62)
            case 0x0C: out.append(0x5C); out.append(0x66)
            case 0..<0x20:
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }

    /// A compact JSON array of strings: `["a","b"]`.
    static func array(_ items: [String]) -> String {
        var out: [UInt8] = [0x5B]
        for (i, s) in items.enumerated() {
            if i > 0 { out.append(0x2C) }
            appendString(s, to: &out)
        }
        out.append(0x5D)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses a JSON array of strings (as written by SQLite's `json_group_array` or by
    /// ``array(_:)``); `nil` if it is anything else.
    static func parseStringArray(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { parseStringArray(bytes: $0) }
    }

    static func parseStringArray(bytes b: UnsafeBufferPointer<UInt8>) -> [String]? {
        var i = 0
        let n = b.count
        func skipSpace() { while i < n, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        func hexValue(_ c: UInt8) -> UInt32? {
            switch c {
            case 0x30...0x39: UInt32(c - 0x30)
            case 0x41...0x46: UInt32(c - 0x41 + 10)
            case 0x61...0x66: UInt32(c - 0x61 + 10)
            default: nil
            }
        }
        func parseString() -> String? {
            guard i < n, b[i] == 0x22 else { return nil }
            i += 1
            var out: [UInt8] = []
            var pendingHigh: UInt32?
            while i < n {
                let c = b[i]
                if c == 0x22 { i += 1; return String(decoding: out, as: UTF8.self) }
                if c == 0x5C {
                    guard i + 1 < n else { return nil }
                    let e = b[i + 1]
                    i += 2
                    switch e {
                    case 0x22: out.append(0x22)
                    case 0x5C: out.append(0x5C)
                    case 0x2F: out.append(0x2F)
                    case 0x62: out.append(0x08)
                    case 0x66: out.append(0x0C)
                    case 0x6E: out.append(0x0A)
                    case 0x72: out.append(0x0D)
                    case 0x74: out.append(0x09)
                    case 0x75:
                        guard i + 4 <= n else { return nil }
                        var v: UInt32 = 0
                        for k in 0..<4 {
                            guard let h = hexValue(b[i + k]) else { return nil }
                            v = v << 4 | h
                        }
                        i += 4
                        var scalarValue = v
                        if (0xD800...0xDBFF).contains(v) { pendingHigh = v; continue }
                        if (0xDC00...0xDFFF).contains(v), let hi = pendingHigh {
                            scalarValue = 0x10000 + ((hi - 0xD800) << 10) + (v - 0xDC00)
                        }
                        pendingHigh = nil
                        let scalar = Unicode.Scalar(scalarValue) ?? "\u{FFFD}"
                        out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: return nil
                    }
                    continue
                }
                out.append(c)
                i += 1
            }
            return nil
        }
        skipSpace()
        guard i < n, b[i] == 0x5B else { return nil }
        i += 1
        var items: [String] = []
        skipSpace()
        if i < n, b[i] == 0x5D { i += 1; skipSpace(); return i == n ? items : nil }
        while true {
            skipSpace()
            guard let s = parseString() else { return nil }
            items.append(s)
            skipSpace()
            guard i < n else { return nil }
            if b[i] == 0x2C { i += 1; continue }
            if b[i] == 0x5D { i += 1; break }
            return nil
        }
        skipSpace()
        return i == n ? items : nil
    }
}
