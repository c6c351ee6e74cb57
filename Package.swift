// swift-tools-version:6.0
import PackageDescription

// The exported C library links the Swift runtime statically and exports only `bp_*` symbols, so
// that it loads with a plain dlopen and no Swift toolchain on the library path. The linker runs
// outside the package directory, hence absolute paths built from the package's own location.
let packageDirectory = Context.packageDirectory
let exportedLibraryLinkerSettings: [LinkerSetting] = [
    .unsafeFlags([
        "-static-stdlib",
        "-Xlinker", "--version-script=\(packageDirectory)/Sources/BackpropC/exports.map",
        "-Xlinker", "-soname=libbackprop.so.0",
        // Dispatch worker threads must outlive a dlclose of the library.
        "-Xlinker", "-z", "-Xlinker", "nodelete",
    ])
]

let package = Package(
    name: "Backprop",
    products: [
        .library(name: "Backprop", targets: ["Backprop"]),
        .library(name: "backprop", type: .dynamic, targets: ["BackpropC"]),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // DWARF 4: the valgrind of Debian 12 (3.19) cannot read the DWARF 5 clang writes by default.
        .target(name: "BackpropKernels", dependencies: ["CBLAS"], cSettings: [.unsafeFlags(["-O3", "-gdwarf-4"])]),
        .target(name: "Backprop", dependencies: ["CBLAS", "BackpropKernels"]),
        .target(name: "BackpropC", dependencies: ["Backprop"], exclude: ["exports.map"],
                linkerSettings: exportedLibraryLinkerSettings),
        .testTarget(name: "BackpropTests", dependencies: ["Backprop", "BackpropKernels"]),
    ]
)
