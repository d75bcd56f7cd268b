import PIAMAdmin
import Testing

@Test func versionIsSemantic() {
    #expect(AdminDaemon.version.split(separator: ".").count == 3)
}
