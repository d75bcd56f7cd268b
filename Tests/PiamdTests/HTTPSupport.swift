import Foundation
import PIAMEngine
import Testing

/// Where an HTTP server listens.
enum HTTPTarget: Sendable {
    case unix(String)
    case tcp(port: UInt16)
}

/// One HTTP response as read off the wire.
struct HTTPReply: Sendable, CustomStringConvertible {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
    /// The body as a JSON object (nil when it is not one).
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }
    var description: String { "\(status) \(text)" }
}

/// A connected blocking socket to `target` (the caller closes it).
func connectSocket(_ target: HTTPTarget) throws -> Int32 {
    switch target {
    case .unix(let p):
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard withUnixAddress(p, { connect(fd, $0, $1) }) == 0 else {
            close(fd)
            throw PIAMError(.connection, "connect \(p): errno \(errno)")
        }
        return fd
    case .tcp(let port):
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw PIAMError(.connection, "connect 127.0.0.1:\(port): errno \(errno)")
        }
        return fd
    }
}

/// A small blocking HTTP/1.1 client (one request per connection) for Unix sockets and
/// loopback ports: enough for piamd's HTTP face, nginx and Caddy, with Content-Length and
/// chunked bodies. Reads time out after 10 s.
func httpRequest(_ target: HTTPTarget, _ method: String, _ path: String, headers: [String: String] = [:],
                 body: [UInt8] = [], host: String = "localhost") throws -> HTTPReply {
    let fd = try connectSocket(target)
    defer { close(fd) }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
    let bytes = Array((head + "\r\n").utf8) + body
    var sent = 0
    while sent < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + sent, bytes.count - sent) }
        guard n > 0 else { throw PIAMError(.connection, "write: errno \(errno)") }
        sent += n
    }
    // Connection: close — read to EOF, then parse.
    var raw: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw PIAMError(.connection, "read: errno \(errno)") }
        if n == 0 { break }
        raw += chunk[0..<n]
    }
    return try parseHTTPResponse(raw)
}

/// Parses one complete HTTP/1.1 response.
func parseHTTPResponse(_ raw: [UInt8]) throws -> HTTPReply {
    let sep: [UInt8] = [13, 10, 13, 10]
    guard let end = (0..<max(0, raw.count - 3)).first(where: { Array(raw[$0..<$0 + 4]) == sep }) else {
        throw PIAMError(.connection, "no complete response head in \(raw.count) bytes: \(String(decoding: raw, as: UTF8.self))")
    }
    let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw PIAMError(.connection, "bad status line \(lines[0])") }
    var headers: [(String, String)] = []
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
    }
    var body = Array(raw[(end + 4)...])
    let reply = HTTPReply(status: status, headers: headers, body: [])
    if reply.header("Transfer-Encoding")?.lowercased() == "chunked" {
        var out: [UInt8] = []
        var i = 0
        while i < body.count {
            guard let lineEnd = (i..<body.count - 1).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }),
                  let size = Int(String(decoding: body[i..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16) else { break }
            if size == 0 { break }
            out += body[(lineEnd + 2)..<(lineEnd + 2 + size)]
            i = lineEnd + 2 + size + 2
        }
        body = out
    } else if let len = reply.header("Content-Length").flatMap(Int.init) {
        body = Array(body.prefix(len))
    }
    return HTTPReply(status: status, headers: headers, body: body)
}

/// POSTs a JSON document.
func postJSON(_ target: HTTPTarget, _ path: String, _ object: Any, headers: [String: String] = [:]) throws -> HTTPReply {
    let data = try JSONSerialization.data(withJSONObject: object)
    return try httpRequest(target, "POST", path, headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a },
                           body: Array(data))
}

/// piamd with its HTTP face on a Unix socket in the fixture's directory.
func startHTTPDaemon(_ f: Fixture, env: [String: String] = [:], listen: String? = nil) async throws -> (DaemonProcess, HTTPTarget) {
    let listenArg = listen ?? "unix:" + f.path("h.sock")
    let d = try await DaemonProcess(f, args: ["--http", listenArg], env: env)
    let target: HTTPTarget
    if listenArg.hasPrefix("unix:") {
        target = .unix(String(listenArg.dropFirst(5)))
    } else {
        target = .tcp(port: UInt16(listenArg.split(separator: ":").last!)!)
    }
    try await waitForHTTP(target, "/healthz", process: d.process)
    return (d, target)
}

/// Polls `path` until it answers 200 (90 s at most).
func waitForHTTP(_ target: HTTPTarget, _ path: String, headers: [String: String] = [:], process: Process? = nil,
                 log: () -> String = { "" }) async throws {
    let deadline = ContinuousClock.now + .seconds(90)
    var last = ""
    while ContinuousClock.now < deadline {
        if let p = process, !p.isRunning { throw PIAMError(.server, "the server exited: \(log())") }
        do {
            let r = try httpRequest(target, "GET", path, headers: headers)
            if r.status == 200 { return }
            last = r.description
        } catch {
            last = "\(error)"
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw PIAMError(.server, "\(target) did not answer \(path) with 200: \(last) \(log())")
}

/// A free loopback TCP port (bound once, then released).
func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
            _ = bind(fd, p, len)
            return getsockname(fd, p, &len)
        }
    }
    return UInt16(bigEndian: addr.sin_port)
}

/// A strict parser of the Prometheus text exposition format (0.0.4): every line is a
/// `# HELP`, a `# TYPE` (counter, gauge, histogram, summary, untyped) or a sample
/// `name{label="value",…} number`; label values are properly escaped; every sample belongs to
/// a declared family; histograms have cumulative, `le`-ordered buckets ending in `+Inf` whose
/// count equals `_count`. Throws on the first violation.
struct PrometheusText {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }
    var types: [String: String] = [:]
    var samples: [Sample] = []

    init(_ text: String) throws {
        func fail(_ why: String, _ line: String) -> PIAMError { PIAMError(.invalidInput, "prometheus text: \(why): \(line)") }
        let nameChars = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:")
        func isName(_ s: Substring) -> Bool {
            guard let f = s.first, !f.isNumber else { return false }
            return s.unicodeScalars.allSatisfy { nameChars.contains($0) }
        }
        guard text.hasSuffix("\n") else { throw fail("does not end with a newline", "") }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                guard let name = rest.split(separator: " ", maxSplits: 1).first, isName(name) else { throw fail("bad HELP", String(line)) }
                continue
            }
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, isName(parts[0]),
                      ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(parts[1])) else {
                    throw fail("bad TYPE", String(line))
                }
                guard types[String(parts[0])] == nil else { throw fail("family declared twice", String(line)) }
                types[String(parts[0])] = String(parts[1])
                continue
            }
            if line.hasPrefix("#") { continue }
            guard !line.isEmpty else { throw fail("empty line", "") }
            // name, optional {labels}, space, value — on characters, every index checked.
            let c = Array(line)
            var i = 0
            while i < c.count, c[i] != "{", c[i] != " " { i += 1 }
            let name = Substring(String(c[..<i]))
            guard isName(name) else { throw fail("bad metric name", String(line)) }
            var labels: [String: String] = [:]
            func at(_ k: Int) throws -> Character {
                guard k < c.count else { throw fail("truncated", String(line)) }
                return c[k]
            }
            if i < c.count, c[i] == "{" {
                i += 1
                while try at(i) != "}" {
                    var j = i
                    while try at(j) != "=" { j += 1 }
                    let key = Substring(String(c[i..<j]))
                    guard isName(key), !key.contains(":") else { throw fail("bad label name", String(line)) }
                    j += 1
                    guard try at(j) == "\"" else { throw fail("label value not quoted", String(line)) }
                    j += 1
                    var value = ""
                    while try at(j) != "\"" {
                        if c[j] == "\\" {
                            j += 1
                            switch try at(j) {
                            case "\\": value.append("\\")
                            case "\"": value.append("\"")
                            case "n": value.append("\n")
                            default: throw fail("bad escape", String(line))
                            }
                        } else {
                            value.append(c[j])
                        }
                        j += 1
                    }
                    guard labels.updateValue(value, forKey: String(key)) == nil else { throw fail("label repeated", String(line)) }
                    j += 1
                    if try at(j) == "," { j += 1 } else if c[j] != "}" { throw fail("labels not separated by commas", String(line)) }
                    i = j
                }
                i += 1
            }
            guard i < c.count, c[i] == " " else { throw fail("no value", String(line)) }
            let valueParts = String(c[(i + 1)...]).split(separator: " ", omittingEmptySubsequences: false)
            guard (1...2).contains(valueParts.count) else { throw fail("bad value/timestamp", String(line)) }
            let v = String(valueParts[0])
            guard let value = Double(v) ?? (v == "+Inf" ? .infinity : v == "-Inf" ? -.infinity : v == "NaN" ? .nan : nil) else {
                throw fail("bad value", String(line))
            }
            let family = [("_bucket", "histogram"), ("_sum", "histogram"), ("_count", "histogram")].first {
                name.hasSuffix($0.0) && types[String(name.dropLast($0.0.count))] == $0.1
            }.map { String(name.dropLast($0.0.count)) } ?? String(name)
            guard types[family] != nil else { throw fail("sample of an undeclared family", String(line)) }
            samples.append(Sample(name: String(name), labels: labels, value: value))
        }
        // Histograms: buckets cumulative and ending in +Inf = _count.
        for (family, type) in types where type == "histogram" {
            var series: [[String: String]: [(Double, Double)]] = [:]
            for s in samples where s.name == family + "_bucket" {
                guard let le = s.labels["le"], let bound = le == "+Inf" ? Double.infinity : Double(le) else {
                    throw fail("bucket without a numeric le", family)
                }
                var key = s.labels
                key["le"] = nil
                series[key, default: []].append((bound, s.value))
            }
            for (key, buckets) in series {
                guard buckets.last?.0 == .infinity else { throw fail("histogram without +Inf", family) }
                for (a, b) in zip(buckets, buckets.dropFirst()) where !(a.0 < b.0 && a.1 <= b.1) {
                    throw fail("buckets not ordered and cumulative", family)
                }
                guard let count = samples.first(where: { $0.name == family + "_count" && $0.labels == key })?.value,
                      count == buckets.last!.1 else { throw fail("_count differs from the +Inf bucket", family) }
            }
        }
    }

    /// The value of the sample with this name and (at least) these labels, summed over the rest.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }
}

/// A sample of piamd's `/metrics` at `http` (``PrometheusText/value(_:_:)``), scraped on a
/// connection of its own.
func scrapedMetric(_ http: HTTPTarget, _ name: String, _ labels: [String: String] = [:]) throws -> Double {
    try PrometheusText(try httpRequest(http, "GET", "/metrics").text).value(name, labels)
}
