//! The `dxmesh` binary: a thin shell over [`dxmesh_node::cli`].

fn main() -> std::process::ExitCode {
    dxmesh_node::cli::main()
}
