// The import document parser and validator (`piamctl import`), and the `piamctl apply` file
// parser: any bytes are decoded, and what decodes is validated against an empty database and
// against the demo's shape — every failure is a `PIAMError` naming what is wrong, never a
// crash. A document that decodes round-trips through JSONEncoder to an equal document.
import Foundation
import PIAMEngine
@testable import PIAMStore

enum Import {
    /// A database state with the seeded orgs and roles (`piamctl init`).
    static let seeded: DBState = {
        var s = DBState()
        s.root = "host"
        s.orgs = ["host": (nil, .host), "partners": ("host", .host), "acme": ("partners", .partner)]
        s.users = ["alice": "acme"]
        s.roles = ["partner-admin", "partner-user", "host-admin"]
        return s
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImport(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = bytes.first else { return 0 }
    let data = Data(bytes.dropFirst())
    if selector & 1 == 1 {
        do {
            let items = try Store.parseApplyFile(data, defaultActor: selector & 2 == 0 ? nil : "alice")
            _ = items.count
        } catch {
            if error.message.isEmpty { fatalError("an apply error without a message") }
        }
        return 0
    }
    let doc: ImportDocument
    do {
        doc = try ImportDocument.decode(data)
    } catch {
        if error.message.isEmpty { fatalError("an import error without a message") }
        return 0
    }
    if let encoded = try? JSONEncoder().encode(doc) {
        guard let again = try? ImportDocument.decode(encoded), again == doc else {
            fatalError("an import document does not survive encode → decode")
        }
    }
    for (mode, state) in [(ImportMode.merge, Import.seeded), (.replace, Import.seeded), (.merge, DBState())] {
        do { _ = try ImportPlan.validate(doc, mode: mode, state: state) } catch {
            if error.message.isEmpty { fatalError("a validation error without a message") }
        }
    }
    return 0
}
