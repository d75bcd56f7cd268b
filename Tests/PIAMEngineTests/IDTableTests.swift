@testable import PIAMEngine
import Testing

/// The id tables' byte-keyed lookups, which the socket's CHECK path uses.
@Suite struct IDTableTests {
    @Test("the small-string layout is confirmed here, so lookups compare two words, not bytes")
    func smallStringLayoutConfirmed() {
        #expect(SmallStringForm.flags != nil)
    }

    @Test("a lookup by UTF-8 bytes finds what a lookup by String finds, over inserts and removals")
    func bytesAndStringsAgree() {
        var t = IDTable()
        var ids: [String] = []
        for i in 0..<20_000 {
            // Short and long, ASCII and not, empty included.
            let id = switch i % 5 {
            case 0: "u\(i)"
            case 1: "user-with-a-long-identifier-\(i)@example.org"
            case 2: "zoë-\(i)"
            case 3: String(repeating: "x", count: i % 17)
            default: "ü\(i)-ßpäce-\(i)"
            }
            if t.insert(id, Int32(i)) == nil { ids.append(id) }
        }
        for (n, id) in ids.enumerated() where n % 3 == 0 { t.remove(id) }
        func byBytes(_ s: String) -> Int32? { Array(s.utf8).withUnsafeBytes { t[utf8: $0] } }
        for id in ids + ["absent", "", "u1x", "zoë-", String(repeating: "x", count: 16)] {
            #expect(byBytes(id) == t[id], "\(id)")
        }
        #expect(ids.contains { t[$0] != nil } && ids.contains { t[$0] == nil })
    }
}
