# Writes the man page and the shell completion scripts that the built tixport prints from
# its own option tables, so that they cannot drift from the program (run with cmake -P):
#   cmake -DTIXPORT=build/tixport -DOUT_DIR=build/cli-docs -P cmake/generate_cli_docs.cmake
foreach(var TIXPORT OUT_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "generate_cli_docs.cmake: -D${var}=... is required")
  endif()
endforeach()
file(MAKE_DIRECTORY "${OUT_DIR}")
# file name -> the tixport arguments that print it
set(outputs "tixport.1|man" "tixport.bash|completion bash" "_tixport|completion zsh")
foreach(entry IN LISTS outputs)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 name)
  list(GET parts 1 command)
  separate_arguments(args UNIX_COMMAND "${command}")
  execute_process(COMMAND "${TIXPORT}" ${args}
                  OUTPUT_FILE "${OUT_DIR}/${name}.tmp"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(REMOVE "${OUT_DIR}/${name}.tmp")
    message(FATAL_ERROR "generate_cli_docs.cmake: '${TIXPORT} ${args}' failed: ${rc}")
  endif()
  file(RENAME "${OUT_DIR}/${name}.tmp" "${OUT_DIR}/${name}")
endforeach()
