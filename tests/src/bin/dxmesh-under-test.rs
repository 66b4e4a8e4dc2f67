//! The real `dxmesh` command, built inside the test package so integration
//! tests can start it as a process via `CARGO_BIN_EXE_dxmesh-under-test`.

fn main() -> std::process::ExitCode {
    dxmesh_node::cli::main()
}
