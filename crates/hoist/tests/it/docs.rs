//! `hoist completions` and `hoist man` checked against the live command line: every command and
//! every flag that `--help` shows is completed and documented, the scripts parse in their shells,
//! and bash really completes them.

use std::path::Path;
use std::process::Command;

use crate::support::{hoist, stdout};

/// The commands `hoist --help` lists (without `help`).
fn commands(dir: &Path) -> Vec<String> {
    let help = stdout(&hoist(dir, &["--help"]));
    let section = help
        .split("Commands:")
        .nth(1)
        .expect("hoist --help lists commands");
    let section = section.split("\n\n").next().unwrap_or_default();
    // A command's line is indented by two spaces; a wrapped description further.
    let commands: Vec<String> = section
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| *word != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        commands.len() >= 7,
        "check, promote, mirror, audit, snapshot, completions, man at least: {commands:?}"
    );
    commands
}

/// The long flags `hoist COMMAND --help` shows.
fn long_flags(dir: &Path, command: &str) -> Vec<String> {
    let help = stdout(&hoist(dir, &[command, "--help"]));
    // Option lines start with the flag (`  -q, --quiet`, `      --since <REV>`); flags named in
    // the prose of a help text are not options of this command.
    let mut flags: Vec<String> = help
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| {
            line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .find(|word| word.starts_with("--") && word.len() > 2)
        })
        .map(str::to_owned)
        .collect();
    flags.sort();
    flags.dedup();
    assert!(flags.contains(&"--help".to_owned()), "{command}: {flags:?}");
    flags
}

fn script(dir: &Path, shell: &str) -> std::path::PathBuf {
    let output = hoist(dir, &["completions", shell]);
    assert!(output.status.success(), "completions {shell}: {output:?}");
    let path = dir.join(format!("hoist.{shell}"));
    std::fs::write(&path, &output.stdout).unwrap();
    path
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Asks bash's completion function what it offers for `line` (the cursor at the end).
fn bash_complete(script: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let program = format!(
        "source {script}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; \
         COMP_POINT={point}; _hoist hoist '{current}' '{previous}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        words = words
            .iter()
            .map(|word| format!("'{word}'"))
            .collect::<Vec<_>>()
            .join(" "),
        cword = words.len() - 1,
        point = line.len(),
        current = words[words.len() - 1],
        previous = words[words.len().saturating_sub(2)],
    );
    let output = Command::new("bash")
        .args(["-c", &program])
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_offers_every_command_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path(), "bash");
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "bash -n: {syntax:?}");

    let offered = bash_complete(&script, "hoist ");
    for command in commands(dir.path()) {
        assert!(offered.contains(&command), "{command} not in {offered:?}");
    }
    assert_eq!(
        bash_complete(&script, "hoist snap"),
        vec!["snapshot"],
        "a prefix completes to the commands it starts"
    );
    for command in commands(dir.path()) {
        let offered = bash_complete(&script, &format!("hoist {command} --"));
        for flag in long_flags(dir.path(), &command) {
            assert!(
                offered.contains(&flag),
                "hoist {command}: {flag} not completed; offered {offered:?}"
            );
        }
    }
}

#[test]
fn zsh_and_fish_scripts_parse_and_name_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (shell, check) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        if !have(shell) {
            println!("skipping {shell}: not installed (ci/install-deps.sh installs it)");
            continue;
        }
        let script = script(dir.path(), shell);
        let syntax = Command::new(shell)
            .args(check)
            .arg(&script)
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{shell} {check:?}: {syntax:?}");
        let text = std::fs::read_to_string(&script).unwrap();
        for command in commands(dir.path()) {
            assert!(text.contains(&command), "{shell}: {command} missing");
            for flag in long_flags(dir.path(), &command) {
                // zsh names flags whole; fish as `-l name`.
                let name = flag.trim_start_matches('-');
                assert!(
                    text.contains(&flag) || text.contains(&format!("-l {name}")),
                    "{shell}: hoist {command} {flag} missing"
                );
            }
        }
        checked += 1;
    }
    println!("{checked} shell(s) checked");
}

#[test]
fn man_pages_document_every_command_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man");
    let output = hoist(dir.path(), &["man", "--dir", pages.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let main = std::fs::read_to_string(pages.join("hoist.1")).unwrap();
    let printed = stdout(&hoist(dir.path(), &["man"]));
    assert_eq!(printed, main, "`hoist man` prints hoist.1");
    for command in commands(dir.path()) {
        assert!(
            main.contains(&format!("hoist\\-{}", command.replace('-', "\\-"))),
            "hoist.1 names hoist-{command}"
        );
        let page = std::fs::read_to_string(pages.join(format!("hoist-{command}.1")))
            .unwrap_or_else(|error| panic!("hoist-{command}.1: {error}"));
        for flag in long_flags(dir.path(), &command) {
            let roff = flag.replace('-', "\\-");
            assert!(page.contains(&roff), "hoist-{command}.1 lacks {flag}");
        }
    }
    if have("groff") {
        for entry in std::fs::read_dir(&pages).unwrap() {
            let path = entry.unwrap().path();
            // -k: preconv, as man(1) runs it, for the UTF-8 in help texts.
            let output = Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success() && output.stderr.is_empty(),
                "groff warns about {}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    } else {
        println!("skipping the groff check: groff is not installed");
    }
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `hoist man | head`: the pipe's reading end is closed before hoist writes.
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("man")
        .current_dir(dir.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(output.stderr.is_empty(), "{output:?}");
    assert!(output.status.success(), "{output:?}");
}
