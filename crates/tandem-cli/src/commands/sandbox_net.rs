use crate::error::CliError;
use tandem_core::sandbox::Forward;

/// Inside a sandbox with its network off: forward endpoints out, then run
/// the agent (started by the sandbox; see `tandem_core::sandbox`)
#[derive(clap::Args, Debug)]
pub struct SandboxNetArgs {
    /// `IP:PORT=SOCKET`: listen on IP:PORT, hand connections to SOCKET.
    #[arg(long = "forward", value_name = "IP:PORT=SOCKET")]
    forwards: Vec<String>,
    /// The command to run.
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

pub fn run(args: &SandboxNetArgs) -> Result<(), CliError> {
    let forwards = args
        .forwards
        .iter()
        .map(|f| {
            let (addr, socket) =
                f.split_once('=').ok_or_else(|| CliError::user(format!("--forward {f}: use IP:PORT=SOCKET")))?;
            let addr = addr.parse().map_err(|_| CliError::user(format!("--forward {f}: {addr} is not IP:PORT")))?;
            Ok(Forward { addr, socket: socket.into() })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let code = tandem_core::sandbox::net_main(&forwards, &args.argv)?;
    std::process::exit(code);
}
