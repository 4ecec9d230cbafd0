//! The `oms-data-operator` command.

use std::process::ExitCode;

const USAGE: &str = "usage: oms-data-operator <template | --version>\n\
  template   print the embedded ElastiCache Redis CloudFormation template";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("template") => {
            print!("{}", oms_data_operator::redis::template::TEMPLATE_BODY);
            ExitCode::SUCCESS
        }
        Some("--version") | Some("version") => {
            println!("oms-data-operator {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
