import ArgumentParser
import Foundation
import NIOCore
import PIAMEngine
import PIAMWire

/// `piam-bench codec`: where piamd's time per CHECK_BATCH goes without the socket. The general
/// path's phases — decoding the request frame into a ``Request``, deciding its items, encoding
/// the ``Response`` — each timed alone on the same frames; then the fast path piamd takes
/// (``FastCheck``: ids looked up from the frame's bytes, the answer written straight out), all
/// three in one. In process, so repeatable under `valgrind --tool=callgrind`.
struct Codec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time decode, decide and encode of CHECK_BATCH frames in process (no socket).")

    @OptionGroup var mix: MixOptions
    @Option(help: "Checks per CHECK_BATCH.") var batch: Int = 128
    @Option(help: "Batches to time per phase.") var rounds: Int = 20_000
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let (m, graph) = try mix.draw()
        let now = Timestamp(Date().timeIntervalSince1970 * 1000)
        let pool = m.batchFrames(size: batch, frames: max(8, m.checks.count / batch))
        let payloads: [ByteBuffer] = (0..<pool.count).map { i in
            var b = ByteBuffer(bytes: pool.bytes[pool.range(i)])
            b.moveReaderIndex(forwardBy: 4)
            return b
        }
        var sink = 0
        var t = Clock.nanos()
        var requests: [Request] = []
        for i in 0..<rounds {
            guard case .success(let r) = Request.decode(payload: payloads[i % payloads.count]) else { throw BenchError("undecodable frame") }
            if i < payloads.count { requests.append(r) }
            sink &+= Int(r.requestID)
        }
        let decodeNs = Double(Clock.nanos() - t) / Double(rounds * batch)
        var decisions: [[Decision]] = []
        t = Clock.nanos()
        for i in 0..<rounds {
            guard case .checkBatch(let s, let items) = requests[i % requests.count].body else { continue }
            let d = graph.checkBatch(items, semantic: s, now: now)
            if i < requests.count { decisions.append(d) }
            sink &+= d.count
        }
        let decideNs = Double(Clock.nanos() - t) / Double(rounds * batch)
        var out = ByteBufferAllocator().buffer(capacity: 4096)
        t = Clock.nanos()
        for i in 0..<rounds {
            out.clear()
            Response(opcode: .checkBatch, requestID: UInt32(i), revision: 1, body: .decisions(decisions[i % decisions.count]))
                .encodeFrame(into: &out)
            sink &+= out.readableBytes
        }
        let encodeNs = Double(Clock.nanos() - t) / Double(rounds * batch)
        // piamd's path for CHECK_BATCH: ids looked up from the frame's bytes, the answer written
        // straight out (FastCheck), all three phases in one.
        var scratch: [CheckBytes] = []
        t = Clock.nanos()
        for i in 0..<rounds {
            out.clear()
            let a = FastCheck.answer(payload: payloads[i % payloads.count], revision: 1, into: &out, scratch: &scratch) {
                graph.check(utf8: $0, now: now)
            }
            guard let a else { throw BenchError("the fast path declined a well-formed CHECK_BATCH") }
            sink &+= a.decisions
        }
        let fastNs = Double(Clock.nanos() - t) / Double(rounds * batch)
        // The fast path's two halves: parsing and writing alone (a constant decision), then the
        // engine alone on the parsed items.
        t = Clock.nanos()
        for i in 0..<rounds {
            out.clear()
            let a = FastCheck.answer(payload: payloads[i % payloads.count], revision: 1, into: &out, scratch: &scratch) { _ in .allow }
            sink &+= a?.decisions ?? 0
        }
        let parseNs = Double(Clock.nanos() - t) / Double(rounds * batch)
        var engineNs = 0.0
        for p in payloads {
            // The items of one frame, parsed once, decided `rounds / frames` times each.
            var items: [CheckBytes] = []
            _ = FastCheck.answer(payload: p, revision: 1, into: &out, scratch: &scratch) { items.append($0); return .allow }
            let reps = max(1, rounds / payloads.count)
            t = Clock.nanos()
            for _ in 0..<reps { for c in items { sink &+= Int(graph.check(utf8: c, now: now).reason.rawValue) } }
            engineNs += Double(Clock.nanos() - t) / Double(reps * items.count)
            withExtendedLifetime(p) {}
        }
        engineNs /= Double(payloads.count)
        let r: [String: Any] = ["decode_ns_per_check": decodeNs, "decide_ns_per_check": decideNs, "encode_ns_per_check": encodeNs,
                                "fast_path_ns_per_check": fastNs, "fast_path_parse_write_ns_per_check": parseNs,
                                "fast_path_engine_ns_per_check": engineNs, "batch": batch, "sink": sink & 1]
        if json { print(Report.json(r)) } else {
            print(String(format: "per check in a CHECK_BATCH of %d: general path: decode %.0f ns, decide %.0f ns, encode %.0f ns; fast path (all three): %.0f ns = parse and write %.0f ns + engine check(utf8:) %.0f ns",
                         batch, decodeNs, decideNs, encodeNs, fastNs, parseNs, engineNs))
        }
    }
}
