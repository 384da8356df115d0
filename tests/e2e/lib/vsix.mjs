// Pack a small extension folder into a .vsix without @vscode/vsce.
//
// A .vsix is a ZIP archive with the extension's files under extension/, plus
// extension.vsixmanifest and [Content_Types].xml at the root. This packer is
// for test fixtures: it runs no prepublish script, applies no .vscodeignore
// and does not check the manifest the way vsce does.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';

function xmlEscape(text) {
  return String(text).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function listFiles(dir) {
  const files = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) files.push(join(entry.parentPath ?? entry.path, entry.name));
  }
  return files.sort();
}

function vsixManifest(pkg) {
  const id = xmlEscape(pkg.name);
  const publisher = xmlEscape(pkg.publisher);
  return `<?xml version="1.0" encoding="utf-8"?>
<PackageManifest Version="2.0.0" xmlns="http://schemas.microsoft.com/developer/vsx-schema/2011" xmlns:d="http://schemas.microsoft.com/developer/vsx-schema-design/2011">
  <Metadata>
    <Identity Language="en-US" Id="${id}" Version="${xmlEscape(pkg.version)}" Publisher="${publisher}" />
    <DisplayName>${xmlEscape(pkg.displayName ?? pkg.name)}</DisplayName>
    <Description xml:space="preserve">${xmlEscape(pkg.description ?? '')}</Description>
    <Properties>
      <Property Id="Microsoft.VisualStudio.Code.Engine" Value="${xmlEscape(pkg.engines.vscode)}" />
    </Properties>
  </Metadata>
  <Installation>
    <InstallationTarget Id="Microsoft.VisualStudio.Code" />
  </Installation>
  <Dependencies />
  <Assets>
    <Asset Type="Microsoft.VisualStudio.Code.Manifest" Path="extension/package.json" Addressable="true" />
  </Assets>
</PackageManifest>
`;
}

const CONTENT_TYPES = `<?xml version="1.0" encoding="utf-8"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
  <Default Extension=".json" ContentType="application/json" />
  <Default Extension=".js" ContentType="application/javascript" />
  <Default Extension=".vsixmanifest" ContentType="text/xml" />
  <Default Extension=".md" ContentType="text/markdown" />
  <Default Extension=".txt" ContentType="text/plain" />
</Types>
`;

// Build a ZIP archive (deflate, no ZIP64, so under 4 GiB and 65535 entries).
function zipArchive(entries) {
  const localParts = [];
  const centralParts = [];
  let offset = 0;
  // 1980-01-01 00:00 in MS-DOS format keeps the archive byte-for-byte stable.
  const dosTime = 0;
  const dosDate = (0 << 9) | (1 << 5) | 1;

  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const compressed = deflateRawSync(data);
    const checksum = crc32(data);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed to extract: 2.0
    local.writeUInt16LE(0x0800, 6); // flags: names are UTF-8
    local.writeUInt16LE(8, 8); // method: deflate
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(checksum, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    localParts.push(local, nameBytes, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, version 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(dosTime, 12);
    central.writeUInt16LE(dosDate, 14);
    central.writeUInt32LE(checksum, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attributes: file mode 0644
    central.writeUInt32LE(offset, 42);
    centralParts.push(central, nameBytes);

    offset += local.length + nameBytes.length + compressed.length;
  }

  const centralDirectory = Buffer.concat(centralParts);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralDirectory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...localParts, centralDirectory, end]);
}

/**
 * Pack every file under extensionDir into outFile as a .vsix and return outFile.
 * The folder must contain a package.json with name, publisher, version and
 * engines.vscode.
 */
export async function packVsix(extensionDir, outFile) {
  const pkg = JSON.parse(await readFile(join(extensionDir, 'package.json'), 'utf8'));
  for (const field of ['name', 'publisher', 'version']) {
    if (!pkg[field]) throw new Error(`${extensionDir}/package.json is missing "${field}"`);
  }
  if (!pkg.engines?.vscode) throw new Error(`${extensionDir}/package.json is missing "engines.vscode"`);

  const entries = [
    { name: 'extension.vsixmanifest', data: Buffer.from(vsixManifest(pkg)) },
    { name: '[Content_Types].xml', data: Buffer.from(CONTENT_TYPES) },
  ];
  for (const file of await listFiles(extensionDir)) {
    const name = `extension/${relative(extensionDir, file).split(sep).join('/')}`;
    entries.push({ name, data: await readFile(file) });
  }

  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, zipArchive(entries));
  return outFile;
}
