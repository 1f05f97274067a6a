# Sourced by the build and test scripts: the compiler flags of every release build.
cpu="${BRAID_TARGET_CPU:-}"
if [ -z "$cpu" ]; then
  case "$(uname -m)" in
    x86_64) cpu="haswell" ;;
    *) cpu="" ;;
  esac
fi
BRAID_SWIFT_FLAGS=()
[ -n "$cpu" ] && BRAID_SWIFT_FLAGS+=(-Xswiftc -target-cpu -Xswiftc "$cpu")
