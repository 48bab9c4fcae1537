//! The `api` binary's command line.

const API: &str = env!("CARGO_BIN_EXE_api");

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(API)
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_command_line_explains_itself_and_refuses_mistakes_with_exit_code_2() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in ["serve", "migrate"] {
        assert!(text.contains(command), "--help lists {command}: {text}");
    }
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(run(&["migrat"]).status.code(), Some(2));
}
