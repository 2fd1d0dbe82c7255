# Generates a .cpp holding the text of FILE as a string constant NAME (namespace
# meridian::embedded), so the binary carries its default configuration.
#   cmake -DINPUT=... -DOUTPUT=... -DNAME=... -P embed.cmake
file(READ "${INPUT}" content)
string(FIND "${content}" ")MERIDIAN_EMBED\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/embed.cmake. Do not edit.\n"
  "#include <string_view>\n"
  "namespace meridian::embedded {\n"
  "extern const std::string_view ${NAME};\n"
  "const std::string_view ${NAME} = R\"MERIDIAN_EMBED(${content})MERIDIAN_EMBED\";\n"
  "}  // namespace meridian::embedded\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
