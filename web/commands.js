// The `/` command language, the same words and aliases as the terminal client's
// (src/client/commands.rs): one typed line in, one command object out. No DOM, no I/O.

/** Help text shown by /help. */
export const HELP = `Commands (anything else you type goes to the conversation you are in):
  /join <room>           switch to <room>, creating it if new     aliases: /j
  /msg <user> <message>  private message to <user>                aliases: /m /pm /dm /whisper
  /users                 list the users in your room              aliases: /who /list
  /rooms                 list all rooms and their sizes           aliases: /r
  /time                  the server's clock
  /send                  share a file with your room              aliases: /upload
  /files                 list the files shared in your room
  /get <id>              download file <id> (SHA-256 checked)     aliases: /download
  /admin <command>       admin console (admin login only): users, rooms, alert TEXT,
                         kick USER, time, stats, help
  /help                  show this help                           aliases: /h /?
  /quit                  sign out                                 aliases: /exit /q
  //text                 send a message that starts with '/'
Keys: Enter sends; Tab moves between the room list, the people, the messages and this box.`;

/** Longest user name, in characters (the server's rule). */
export const MAX_USER = 20;
/** Longest room name, in characters (the server's rule). */
export const MAX_ROOM = 32;

// Whitespace, control and invisible characters the server refuses in names.
const BAD_NAME_CHAR = /[\s\p{Cc}\p{Cf}]/u;

/** Why `name` cannot be a name of at most `max` characters, or null when it can. */
export function nameProblem(name, max) {
  const chars = [...name];
  if (chars.length === 0) return 'it is empty';
  if (chars.length > max) return `it is ${chars.length} characters long; at most ${max} are allowed`;
  if (BAD_NAME_CHAR.test(name)) return 'it contains a space, a control or an invisible character';
  return null;
}

const USAGE = {
  join: '/join <room>',
  msg: '/msg <user> <message>',
  get: '/get <id>',
};

/**
 * Parses one input line. Returns `{cmd, ...}` where cmd is one of: say (text), join (room),
 * msg (to, text), users, rooms, time, send, files, get (id), admin (text), help, quit, empty,
 * invalid (error: the message to show).
 */
export function parseLine(line) {
  if (line.trim() === '') return { cmd: 'empty' };
  if (!line.startsWith('/')) return { cmd: 'say', text: line };
  const rest = line.slice(1);
  if (rest.startsWith('/')) return { cmd: 'say', text: rest };
  const [word, args] = splitWord(rest);
  switch (word.toLowerCase()) {
    case 'join':
    case 'j':
      return parseJoin(args);
    case 'msg':
    case 'm':
    case 'pm':
    case 'dm':
    case 'whisper':
      return parseMsg(args);
    case 'users':
    case 'who':
    case 'list':
      return { cmd: 'users' };
    case 'rooms':
    case 'r':
      return { cmd: 'rooms' };
    case 'time':
      return { cmd: 'time' };
    case 'send':
    case 'upload':
      return { cmd: 'send' };
    case 'files':
      return { cmd: 'files' };
    case 'get':
    case 'download':
      return parseGet(args);
    case 'admin':
      return { cmd: 'admin', text: args.trim() || 'help' };
    case 'help':
    case 'h':
    case '?':
      return { cmd: 'help' };
    case 'quit':
    case 'exit':
    case 'q':
      return { cmd: 'quit' };
    default:
      return invalid(`unknown command '/${word}'; type /help for the list (to send a line starting with '/', type '//')`);
  }
}

function invalid(error) {
  return { cmd: 'invalid', error };
}

/** Splits off the first word; the rest keeps its inner spacing. */
function splitWord(s) {
  const t = s.trimStart();
  const i = t.search(/\s/);
  return i < 0 ? [t, ''] : [t.slice(0, i), t.slice(i).trimStart()];
}

function parseJoin(args) {
  const room = args.trim();
  if (!room) return invalid(`missing room name; usage: ${USAGE.join}`);
  const problem = nameProblem(room, MAX_ROOM);
  if (problem) return invalid(`invalid room name '${room}': ${problem}`);
  return { cmd: 'join', room };
}

function parseMsg(args) {
  const [to, text] = splitWord(args);
  if (!to) return invalid(`missing user name; usage: ${USAGE.msg}`);
  const problem = nameProblem(to, MAX_USER);
  if (problem) return invalid(`invalid user name '${to}': ${problem}`);
  if (!text.trim()) return invalid(`missing message text; usage: ${USAGE.msg}`);
  return { cmd: 'msg', to, text: text.trimEnd() };
}

function parseGet(args) {
  const [id] = splitWord(args);
  if (!id) return invalid(`missing file id; usage: ${USAGE.get}`);
  if (!/^\d+$/.test(id)) return invalid(`invalid file id '${id}': ids are numbers, as /files lists them`);
  return { cmd: 'get', id: Number(id) };
}
